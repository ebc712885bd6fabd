"""A fake OpenAI Chat Completions server, speaking the real wire format: `POST
/v1/chat/completions`, JSON or SSE (`data: {...}` events, `data: [DONE]`), usage in the
stream only when `stream_options.include_usage` asks for it, errors as
`{"error": {"message", "type", "param", "code"}}`. A request it cannot read is a 400 the
way OpenAI words it (`invalid_type`, naming the param), never a crash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import FakeUpstream, Unreadable, serve

ERROR_TYPES = {401: "invalid_request_error", 429: "rate_limit_exceeded"}
STALL_LIMIT = 30.0  # seconds a stalled stream waits for its client to leave


def routes(fake: FakeUpstream) -> list[web.RouteDef]:
    async def chat_completions(request: web.Request) -> web.StreamResponse:
        body = await fake.record(request)
        script = fake.script
        if script.status >= 300:
            return web.json_response(error_body(fake), status=script.status)
        check(body)
        if script.malformed:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if body.get("stream"):
            return await _stream(request, fake, body)
        return web.json_response(completion(fake, body))

    return [web.post("/v1/chat/completions", chat_completions)]


@asynccontextmanager
async def running() -> AsyncIterator[FakeUpstream]:
    async with serve(routes, sdk_path="/v1", refuse=refusal) as fake:
        yield fake


def check(body: dict[str, Any]) -> None:
    """What OpenAI refuses among the fields this fake reads, and the required ones."""
    if not isinstance(body.get("model"), str):
        raise Unreadable("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Unreadable("'messages' must be a non-empty array of message objects", "messages")
    _typed(body, "stream", bool, "a boolean")
    _typed(body, "stream_options", dict, "an object")
    _typed(body.get("stream_options") or {}, "include_usage", bool, "a boolean", "stream_options.")


def _typed(body: dict[str, Any], name: str, kind: type, expected: str, prefix: str = "") -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        got = type(value).__name__
        message = f"Invalid type for '{prefix}{name}': expected {expected}, but got {got}."
        raise Unreadable(message, prefix + name)


def refusal(problem: Unreadable) -> web.Response:
    code = "invalid_type" if problem.message.startswith("Invalid type") else None
    error = {
        "message": problem.message,
        "type": "invalid_request_error",
        "param": problem.param,
        "code": code,
    }
    return web.json_response({"error": error}, status=400)


def error_body(fake: FakeUpstream) -> dict[str, Any]:
    status = fake.script.status
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    code = "invalid_api_key" if status == 401 else None
    message = fake.script.error_message
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def usage(fake: FakeUpstream) -> dict[str, Any]:
    s = fake.script
    return {
        "prompt_tokens": s.input_tokens,
        "completion_tokens": s.output_tokens,
        "total_tokens": s.input_tokens + s.output_tokens,
        "prompt_tokens_details": {"cached_tokens": s.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def completion(fake: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": fake.script.text}
    finish = "stop"
    if fake.script.tool_call:
        name, arguments = fake.script.tool_call
        message["content"] = None
        message["tool_calls"] = [_call(name, orjson.dumps(arguments).decode())]
        finish = "tool_calls"
    message |= {"refusal": None, "annotations": []}
    return {
        **_header(body, "chat.completion"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage(fake),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


async def _stream(
    request: web.Request, fake: FakeUpstream, body: dict[str, Any]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    header = _header(body, "chat.completion.chunk")
    if include_usage:
        header["usage"] = None  # OpenAI sends it on every chunk, filled only on the last

    async def send(delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        await response.write(b"data: " + orjson.dumps({**header, "choices": [choice]}) + b"\n\n")

    script = fake.script
    finish = "stop"
    if script.tool_call:
        name, arguments = script.tool_call
        opening = [{"index": 0, **_call(name, "")}]  # the arguments follow in pieces
        await send({"role": "assistant", "content": None, "tool_calls": opening})
        text = orjson.dumps(arguments).decode()
        pieces = [_arguments_delta(piece) for piece in fake.split(text)]
        finish = "tool_calls"
    else:
        await send({"role": "assistant", "content": "", "refusal": None})
        pieces = [{"content": piece} for piece in fake.split()]
    for delta in pieces[: script.stall_after_chunks]:
        await send(delta)
    if script.stall_after_chunks is not None:
        await stall(request, fake)
        return response
    await send({}, finish)
    if include_usage and not script.omit_usage:
        last = {**header, "choices": [], "usage": usage(fake)}
        await response.write(b"data: " + orjson.dumps(last) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def stall(request: web.Request, fake: FakeUpstream) -> None:
    """Hang mid-answer until the client hangs up (aiohttp does not cancel the handler)."""
    deadline = time.monotonic() + STALL_LIMIT
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            fake.disconnected.set()
            return
        await asyncio.sleep(0.01)


def _call(name: str, arguments: str) -> dict[str, Any]:
    function = {"name": name, "arguments": arguments}
    return {"id": "call_fake0001", "type": "function", "function": function}


def _arguments_delta(piece: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def _header(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake0001",
        "object": kind,
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
    }
