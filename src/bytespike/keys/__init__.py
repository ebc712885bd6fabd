"""API keys: minting, hashing, rosters with per-model caps, and request authentication."""
