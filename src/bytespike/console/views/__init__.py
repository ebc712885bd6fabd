"""The console's pages, one module per area; each calls the services the API and CLI call."""
