"""A fake Anthropic Messages API (POST /v1/messages) in the real wire format: Message
objects, the named SSE event sequence with a ping, and `{"type": "error", "error": ...}`;
and its token count (POST /v1/messages/count_tokens: the script's `input_tokens`).

Usage follows the script: `input_tokens` counts every prompt token, so the fake reports
`input_tokens - cached_tokens` uncached and `cached_tokens` as cache_read_input_tokens,
exactly as Anthropic splits them.

A request it cannot read (a required field missing, or one it reads of the wrong type) is
Anthropic's 400 `invalid_request_error`, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import FakeUpstream, Unreadable, serve

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
TOOL_USE_ID = "toolu_01FakeToolUseId"


def routes(fake: FakeUpstream) -> list[web.RouteDef]:
    async def messages(request: web.Request) -> web.StreamResponse:
        body = await fake.record(request)
        script = fake.script
        if script.status != 200:
            return error_response(fake)
        check(body)
        if body.get("stream"):
            return await _stream(fake, request, body)
        if script.malformed:
            return web.json_response({"completion": "not a Message"})
        return web.json_response(_message(fake, body))

    async def count_tokens(request: web.Request) -> web.StreamResponse:
        body = await fake.record(request)
        if fake.script.status != 200:
            return error_response(fake)
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            raise Unreadable("model and messages: Field required")
        for name in ("max_tokens", "stream"):  # generation settings: not count_tokens's
            if name in body:
                raise Unreadable(f"{name}: Extra inputs are not permitted")
        if fake.script.malformed:
            return web.json_response({"input_tokens": "many"})
        return web.json_response({"input_tokens": fake.script.input_tokens})

    return [
        web.post("/v1/messages", messages),
        web.post("/v1/messages/count_tokens", count_tokens),
    ]


def error_response(fake: FakeUpstream) -> web.Response:
    """Anthropic's error body for the script's status."""
    status = fake.script.status
    error = {"type": ERROR_TYPES.get(status, "api_error"), "message": fake.script.error_message}
    return web.json_response({"type": "error", "error": error}, status=status)


@asynccontextmanager
async def running() -> AsyncIterator[FakeUpstream]:
    async with serve(routes, refuse=refusal) as fake:
        yield fake


def check(body: dict[str, Any]) -> None:
    """What Anthropic refuses among the required fields and those this fake reads, worded
    as Anthropic words it ("max_tokens: Field required")."""
    if not isinstance(body.get("model"), str):
        raise Unreadable(
            "model: Field required"
            if "model" not in body
            else "model: Input should be a valid string"
        )
    limit = body.get("max_tokens")
    if "max_tokens" not in body:
        raise Unreadable("max_tokens: Field required")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise Unreadable("max_tokens: Input should be a valid integer greater than 0")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Unreadable("messages: at least one message is required")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise Unreadable("stream: Input should be a valid boolean")


def refusal(problem: Unreadable) -> web.Response:
    error = {"type": "invalid_request_error", "message": problem.message}
    return web.json_response({"type": "error", "error": error}, status=400)


def _usage(fake: FakeUpstream, output_tokens: int) -> dict[str, Any]:
    script = fake.script
    if script.usage is not None:
        return {**script.usage, "output_tokens": output_tokens}
    return {
        "input_tokens": script.input_tokens - script.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": script.cached_tokens,
        "output_tokens": output_tokens,
    }


def _skeleton(fake: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(fake, 1),
    }


def _message(fake: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    message = _skeleton(fake, body)
    if fake.script.tool_call:
        name, arguments = fake.script.tool_call
        message["content"] = [
            {"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": arguments}
        ]
        message["stop_reason"] = "tool_use"
    else:
        message["content"] = [{"type": "text", "text": fake.script.text}]
        message["stop_reason"] = "end_turn"
    message["usage"] = _usage(fake, fake.script.output_tokens)
    return message


async def _stream(
    fake: FakeUpstream, request: web.Request, body: dict[str, Any]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    script = fake.script

    async def send(event: str, data: dict[str, Any]) -> None:
        await response.write(f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n")

    if script.malformed:
        await response.write(b"event: message_start\ndata: {this is not json\n\n")
        return response
    await send("message_start", {"type": "message_start", "message": _skeleton(fake, body)})
    if script.tool_call:
        name, arguments = script.tool_call
        block: dict[str, Any] = {"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": {}}
        pieces = fake.split(json.dumps(arguments))
        delta_type, field, reason = "input_json_delta", "partial_json", "tool_use"
    else:
        block = {"type": "text", "text": ""}
        pieces = fake.split()
        delta_type, field, reason = "text_delta", "text", "end_turn"
    await send(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    )
    await send("ping", {"type": "ping"})
    for sent, piece in enumerate(pieces):
        if script.stall_after_chunks is not None and sent >= script.stall_after_chunks:
            await _hang_until_gone(fake, request)
            return response
        delta = {"type": delta_type, field: piece}
        await send(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    await send("content_block_stop", {"type": "content_block_stop", "index": 0})
    message_delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": reason, "stop_sequence": None},
    }
    if not script.omit_usage:
        message_delta["usage"] = {"output_tokens": script.output_tokens}
        if script.usage is not None:
            # As Anthropic does: every count restated, the cache writes' split left out.
            restated = {k: v for k, v in script.usage.items() if k != "cache_creation"}
            message_delta["usage"] = restated
    await send("message_delta", message_delta)
    await send("message_stop", {"type": "message_stop"})
    await response.write_eof()
    return response


async def _hang_until_gone(fake: FakeUpstream, request: web.Request) -> None:
    """Send nothing more until the client closes the connection (aiohttp does not cancel
    handlers on disconnect by default, so watch the transport)."""
    try:
        for _ in range(3000):  # at most a minute, so a stuck test still ends
            transport = request.transport
            if transport is None or transport.is_closing():
                fake.disconnected.set()
                return
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:  # handler cancellation, where it is switched on
        fake.disconnected.set()
        raise
