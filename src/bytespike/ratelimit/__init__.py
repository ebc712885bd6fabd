"""Per-key request limits behind one interface: in-memory (one process), a shared file (the
workers of one `serve --workers N`) or Redis (every replica)."""
