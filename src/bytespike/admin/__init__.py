"""The admin HTTP API: the CLI's commands over HTTP, guarded by BYTESPIKE_ADMIN_TOKEN."""
