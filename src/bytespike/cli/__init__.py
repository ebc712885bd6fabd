"""The `bytespike` command line: one module per command group."""
