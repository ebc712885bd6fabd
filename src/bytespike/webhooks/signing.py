"""Signing secrets: minting `whsec_…`, sealing them at rest, and Standard Webhooks signatures.

A signing secret must be recoverable to sign with, so it cannot be hashed like an API key;
it is sealed with Fernet (AES-128-CBC + HMAC) under a key derived from
BYTESPIKE_SECRET_KEY. Several comma-separated keys rotate: the first seals, any opens.
On the embedded SQLite default with no key set, a random key is generated once into a file
beside the database (mode 0600), so a copy of the database alone reveals no secret.
PostgreSQL deployments run several replicas, which must share the key: there it is required.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from bytespike.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

log = logging.getLogger(__name__)

PREFIX = "whsec_"
_SECRET_BYTES = 32
_DERIVATION = b"bytespike webhook signing secrets v1\x00"


class SecretKeyMissing(RuntimeError):
    """No key to seal secrets with: a configuration error, reported at start-up."""


class SecretUnreadable(Exception):
    """The sealed secret was made under a key this process does not have."""


def mint() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _fernet(passphrase: str) -> Fernet:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(_DERIVATION + passphrase.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class SecretBox:
    """Seals and opens signing secrets with the process's secret key(s)."""

    def __init__(self, passphrases: list[str]) -> None:
        self._passphrases = passphrases

    @functools.cached_property
    def _sealer(self) -> MultiFernet:
        # Built on first use: `cryptography` costs ~7 MB, and a gateway that never sends a
        # webhook should not carry it.
        from cryptography.fernet import MultiFernet

        return MultiFernet([_fernet(p) for p in self._passphrases])

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        keys = [k.strip() for k in (settings.secret_key or "").split(",") if k.strip()]
        if keys:
            return cls(keys)
        if settings.is_sqlite:
            return cls([_local_key(settings.database_url)])
        raise SecretKeyMissing(
            "BYTESPIKE_SECRET_KEY must be set on PostgreSQL (the same value on every replica): "
            "it encrypts webhook signing secrets at rest"
        )

    def seal(self, secret: str) -> str:
        return self._sealer.encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._sealer.decrypt(sealed.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise SecretUnreadable("webhook secret sealed under an unknown key") from exc


@functools.cache
def _local_key(database_url: str) -> str:
    """The embedded default's key, kept in `<database file>.key`, created on first use."""
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return secrets.token_urlsafe(32)  # nothing persists, so neither need the key
    path = Path(database + ".key")
    path.parent.mkdir(parents=True, exist_ok=True)  # a first start, before the database exists
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
    log.info("generated the webhook secret key", extra={"path": str(path)})
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, keyed by the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "bytespike-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
