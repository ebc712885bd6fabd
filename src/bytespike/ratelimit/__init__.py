"""Per-key request limits behind one interface: in-memory (one process) or Redis (many)."""
