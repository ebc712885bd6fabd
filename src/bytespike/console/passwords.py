"""Passwords: Argon2id hashes (argon2-cffi's RFC 9106 low-memory profile), computed off the
event loop: one hash costs tens of milliseconds and 64 MiB, which must not stall other
requests."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bytespike.errors import InvalidRequest

MIN_LENGTH = 10
MAX_LENGTH = 1024  # bounds the work one sign-in can ask of the server

_HASHER = PasswordHasher()  # Argon2id


@functools.cache
def _dummy() -> str:
    """Verified against when no such user exists, so an unknown name takes as long as a
    wrong password and the timing tells nothing about who has an account. Made on first
    use, not at import: a hash takes 64 MiB, which every process that imports the console
    (each CLI command, each server) would otherwise add to its peak memory."""
    return _HASHER.hash("bytespike: no such user")


def checked(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidRequest(f"a password has at most {MAX_LENGTH} characters")
    return password


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, checked(password))


def _verify(stored: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: no password set, always False)."""
    return await asyncio.to_thread(_verify, stored, password)
