"""Webhook signing secrets are sealed at rest under a key the database does not hold."""

import stat

import pytest

from bytespike.settings import Settings
from bytespike.webhooks.signing import (
    SecretBox,
    SecretKeyMissing,
    SecretUnreadable,
    _local_key,
    mint,
)


def test_sqlite_default_generates_a_private_key_file_once(tmp_path):
    # A first start: not even the database's folder exists yet.
    settings = Settings(database_url=f"sqlite:///{tmp_path}/data/bytespike.db", secret_key=None)
    secret = mint()
    sealed = SecretBox.from_settings(settings).seal(secret)

    key_file = tmp_path / "data" / "bytespike.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert secret not in sealed
    assert key_file.read_text().strip() not in sealed
    # A new process (nothing cached) reads the same file and opens what this one sealed.
    _local_key.cache_clear()
    assert SecretBox.from_settings(settings).open(sealed) == secret


def test_another_key_cannot_open_a_sealed_secret():
    sealed = SecretBox(["key-one"]).seal(mint())
    with pytest.raises(SecretUnreadable):
        SecretBox(["key-two"]).open(sealed)


def test_rotation_opens_with_any_listed_key_and_seals_with_the_first():
    secret = mint()
    old = SecretBox(["old-key"]).seal(secret)
    rotated = Settings(database_url="postgresql://x@127.0.0.1/db", secret_key="new-key, old-key")
    box = SecretBox.from_settings(rotated)
    assert box.open(old) == secret
    assert SecretBox(["new-key"]).open(box.seal(secret)) == secret


def test_postgresql_requires_a_shared_key():
    settings = Settings(database_url="postgresql://x@127.0.0.1/db", secret_key=None)
    with pytest.raises(SecretKeyMissing, match="BYTESPIKE_SECRET_KEY"):
        SecretBox.from_settings(settings)
