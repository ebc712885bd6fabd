"""Bodies are bounded before they are read, and only after the caller is authenticated: a
declared length past the route's limit is 413 at once, streamed bytes past it too, a body
that never finishes is 408, and an anonymous client is 401 whatever it says it will send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from bytespike.context import Context
from tests.conftest import ADMIN_TOKEN
from tests.e2e.gateway_support import Upstreams, gateway

API_LIMIT = 4096
MODEL_LIMIT = 64 * 1024


@pytest.fixture
async def base_url(ctx: Context, fakes: Upstreams) -> AsyncIterator[str]:
    ctx.settings = ctx.settings.model_copy(
        update={
            "api_body_limit_bytes": API_LIMIT,
            "model_body_limit_bytes": MODEL_LIMIT,
            "body_timeout_seconds": 0.5,
        }
    )
    async with gateway(ctx, fakes) as url:
        yield url


async def head_only(
    base_url: str, path: str, headers: dict[str, str], length: int
) -> tuple[int, Any]:
    """Send a request's head announcing `length` bytes of body, and none of them; the answer."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status_line = await reader.readline()
    head = await reader.readuntil(b"\r\n\r\n")
    size = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(size)
    writer.close()
    return int(status_line.split()[1]), orjson.loads(body)


KEY_JSON = {"Content-Type": "application/json"}


async def test_an_anonymous_client_is_401_before_any_byte_of_its_body(base_url: str) -> None:
    for path in ("/api/v1/admin/users", "/api/v1/me/webhooks", "/v1/chat/completions"):
        status, body = await head_only(base_url, path, KEY_JSON, 1 << 30)
        assert status == 401, body
        assert body["error"]["type"] == "authentication_error"


async def test_a_declared_length_past_the_limit_is_413_at_once(
    base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    admin = {**KEY_JSON, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    status, body = await head_only(base_url, "/api/v1/admin/users", admin, API_LIMIT + 1)
    assert status == 413 and body["error"]["type"] == "invalid_request_error", body
    holder = {**KEY_JSON, "x-api-key": key}
    status, body = await head_only(base_url, "/v1/chat/completions", holder, MODEL_LIMIT + 1)
    assert status == 413 and body["error"]["code"] == "request_too_large", body
    status, body = await head_only(base_url, "/v1/messages", holder, MODEL_LIMIT + 1)
    assert status == 413 and body == {
        "type": "error",
        "error": {"type": "request_too_large", "message": body["error"]["message"]},
    }


async def test_streamed_bytes_past_the_limit_are_413(
    base_url: str, account: tuple[str, int]
) -> None:
    """A chunked body declares no length: it is counted as it arrives."""
    key, _ = account

    async def chunks(size: int) -> AsyncIterator[bytes]:
        for _ in range(size // 1024 + 1):
            yield b" " * 1024

    async with httpx.AsyncClient(base_url=base_url) as http:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", **KEY_JSON}
        answer = await http.post("/api/v1/admin/users", content=chunks(API_LIMIT), headers=admin)
        assert answer.status_code == 413, answer.text
        holder = {"x-api-key": key, **KEY_JSON}
        answer = await http.post(
            "/v1/chat/completions", content=chunks(MODEL_LIMIT), headers=holder
        )
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "request_too_large"


async def test_a_body_that_never_finishes_is_408(base_url: str, account: tuple[str, int]) -> None:
    key, _ = account
    parts = urlsplit(base_url)
    for path, auth in (
        ("/v1/chat/completions", f"x-api-key: {key}"),
        ("/api/v1/admin/users", f"Authorization: Bearer {ADMIN_TOKEN}"),
    ):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n{auth}\r\n\r\n"
        writer.write(head.encode() + b'{"model": ')  # and then nothing more
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=30)
        writer.close()
        assert status_line.split()[1] == b"408", status_line


async def test_bodies_within_the_limits_are_served(base_url: str, account: tuple[str, int]) -> None:
    key, _ = account
    text = "x" * (MODEL_LIMIT - 200)
    call = {"model": "mock", "messages": [{"role": "user", "content": text}]}
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": key}) as http:
        answer = await http.post("/v1/chat/completions", json=call)
        assert answer.status_code == 200, answer.text
        threshold = await http.put(
            "/api/v1/me/notifications", json={"low_balance_threshold_usd": 3}
        )
        assert threshold.status_code == 200, threshold.text
