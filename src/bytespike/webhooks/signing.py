"""Signing secrets: minting `whsec_…`, sealing them at rest, and Standard Webhooks signatures.

A signing secret must be recoverable to sign with, so it cannot be hashed like an API key;
it is sealed with Fernet (AES-128-CBC + HMAC) under a key derived from
BYTESPIKE_SECRET_KEY. Several comma-separated keys rotate: the first seals, any opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bytespike.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "whsec_"
_SECRET_BYTES = 32
# Used only when BYTESPIKE_SECRET_KEY is unset: it keeps development working but protects
# nothing, so start-up warns about it.
DEVELOPMENT_KEY = "bytespike-development-secret-key"
_DERIVATION = b"bytespike webhook signing secrets v1\x00"


class SecretUnreadable(Exception):
    """The sealed secret was made under a key this process does not have."""


def mint() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _fernet(passphrase: str) -> Fernet:
    digest = hashlib.sha256(_DERIVATION + passphrase.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class SecretBox:
    """Seals and opens signing secrets with the process's secret key(s)."""

    def __init__(self, passphrases: list[str]) -> None:
        self._fernet = MultiFernet([_fernet(p) for p in passphrases])

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        keys = [k.strip() for k in (settings.secret_key or "").split(",") if k.strip()]
        return cls(keys or [DEVELOPMENT_KEY])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise SecretUnreadable("webhook secret sealed under an unknown key") from exc


def warn_if_development(settings: Settings) -> None:
    """Called once at start-up by the server and the worker."""
    if not settings.secret_key:
        log.warning("BYTESPIKE_SECRET_KEY is unset: webhook secrets are sealed with a public key")


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
