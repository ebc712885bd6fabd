"""Every malformed credential (non-ASCII, Latin-1 bytes, truncated, padded) is a 401
authentication_error in the route's own format, through either key header: never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import make_key, make_user

CHAT = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}

# Raw header bytes: the server sees them as Latin-1 text, so UTF-8 becomes two characters.
MALFORMED = [
    pytest.param(b"bsk-\xc3\xa9", id="utf8-e-acute"),
    pytest.param(b"bsk-" + b"\xc3\xa9" * 43, id="utf8-right-length"),
    pytest.param(b"bsk-" + b"a" * 42 + b"\xe9", id="latin1-last-char"),
    pytest.param(b"\xff" * 47, id="latin1-only"),
    pytest.param(b"bsk-" + b"a" * 42, id="one-short"),
    pytest.param(b"bsk-" + b"a" * 42 + b"=", id="padding"),
]


def _openai(body: dict[str, Any]) -> None:
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == "authentication_error", body


def _anthropic(body: dict[str, Any]) -> None:
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error", body


def _generic(body: dict[str, Any]) -> None:
    assert body["error"]["type"] == "authentication_error", body


ROUTES = [
    pytest.param("POST", "/v1/chat/completions", _openai, id="chat"),
    pytest.param("POST", "/v1/messages", _anthropic, id="messages"),
    pytest.param("GET", "/v1/models", _openai, id="models"),
    pytest.param("GET", "/api/v1/me/account", _generic, id="account"),
]


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
@pytest.mark.parametrize("credential", MALFORMED)
@pytest.mark.parametrize(("method", "path", "shape"), ROUTES)
async def test_a_malformed_credential_is_401_in_the_routes_format(
    client: httpx.AsyncClient, header: str, credential: bytes, method: str, path: str, shape: Any
) -> None:
    value = b"Bearer " + credential if header == "authorization" else credential
    answer = await client.request(method, path, headers={header: value}, json=CHAT)
    assert answer.status_code == 401, answer.text
    shape(answer.json())


async def test_a_good_key_after_a_malformed_one_still_works(ctx: Any, client: httpx.AsyncClient):
    await make_user(ctx)
    key = await make_key(ctx)
    refused = await client.get("/v1/models", headers={"x-api-key": b"bsk-\xc3\xa9"})
    assert refused.status_code == 401
    listed = await client.get("/v1/models", headers={"x-api-key": key["key"]})
    assert listed.status_code == 200
