"""Random tokens for cookies and invite links; only their SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import secrets


def mint() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
