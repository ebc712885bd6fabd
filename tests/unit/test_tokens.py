"""API key secrets: recognisable, random, checked by shape and stored only as a digest."""

from __future__ import annotations

import hashlib
import re

import pytest

from bytespike.keys import tokens


def test_a_minted_key_is_bsk_plus_43_url_safe_characters():
    minted = tokens.mint()
    assert re.fullmatch(r"bsk-[A-Za-z0-9_-]{43}", minted.secret)
    assert tokens.well_formed(minted.secret)
    assert minted.prefix == minted.secret[:12]
    assert minted.hash == hashlib.sha256(minted.secret.encode()).hexdigest()
    assert minted.secret not in minted.hash


def test_keys_are_random():
    assert len({tokens.mint().secret for _ in range(1000)}) == 1000


def test_digest_is_sha256_hex():
    assert tokens.digest("bsk-" + "a" * 43) == hashlib.sha256(b"bsk-" + b"a" * 43).hexdigest()
    assert len(tokens.digest(tokens.mint().secret)) == 64


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "bsk-",
        "bsk-" + "a" * 42,
        "bsk-" + "a" * 44,
        "sk-" + "a" * 44,
        "BSK-" + "a" * 43,
        "bsk-" + "a" * 42 + "=",
        "bsk-" + "a" * 42 + "é",
        " bsk-" + "a" * 43,
        "bsk-" + "a" * 43 + "\n",
    ],
)
def test_malformed_keys_are_recognised(candidate):
    assert not tokens.well_formed(candidate)


@pytest.mark.parametrize("candidate", ["bsk-é", "bsk-" + "é" * 43, "bsk-" + "a" * 42 + "\xff", ""])
def test_a_malformed_credential_has_no_digest_and_is_never_hashed(candidate):
    assert tokens.presented_digest(candidate) is None


def test_a_well_formed_credential_is_looked_up_by_its_digest():
    minted = tokens.mint()
    assert tokens.presented_digest(minted.secret) == minted.hash
