"""The key format: `bsk-` plus 256 bits of randomness, stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

PREFIX = "bsk-"
_RANDOM_BYTES = 32
_SHAPE = re.compile(r"bsk-[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class MintedKey:
    secret: str  # shown once, never stored
    hash: str
    prefix: str  # enough to recognise the key in listings


def mint() -> MintedKey:
    secret = PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
    return MintedKey(secret=secret, hash=digest(secret), prefix=secret[:12])


def digest(secret: str) -> str:
    """For minted keys; a presented one goes through `presented_digest`."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def presented_digest(candidate: str) -> str | None:
    """The digest to look a presented credential up by, None if it cannot be a key. The
    shape is checked first, so nothing else is hashed (non-ASCII text cannot be)."""
    return digest(candidate) if well_formed(candidate) else None


def well_formed(candidate: str) -> bool:
    """Cheap shape check so garbage never reaches the database."""
    return _SHAPE.fullmatch(candidate) is not None
