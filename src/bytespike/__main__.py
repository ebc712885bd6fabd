"""`python -m bytespike` runs the CLI."""

from bytespike.cli.main import app

app()
