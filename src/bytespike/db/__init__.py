"""Storage: the engine pair (SQLite WAL or PostgreSQL), shared metadata and migrations."""
