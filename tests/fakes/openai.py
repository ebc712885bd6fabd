"""A fake OpenAI Chat Completions server, speaking the real wire format: `POST
/v1/chat/completions` (and the Responses API's `POST /v1/responses`, below), JSON or SSE
(`data: {...}` events, `data: [DONE]`), usage in the stream only when
`stream_options.include_usage` asks for it, errors as `{"error": {"message", "type",
"param", "code"}}`. A request it cannot read is a 400 the way OpenAI words it
(`invalid_type`, naming the param), never a crash.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
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

    return [
        web.post("/v1/chat/completions", chat_completions),
        *responses_routes(fake),
        *embeddings_routes(fake),
    ]


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
    if s.usage is not None:
        return s.usage
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
    if script.stall_after_chunks is not None and script.resume is None:
        await stall(request, fake)
        return response
    if script.resume is not None:
        await script.resume.wait()
        for delta in pieces[script.stall_after_chunks :]:
            await send(delta)
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


# The Responses API (POST /v1/responses) ----------------------------------------------------
# Answers as OpenAI does: a Response object, or its typed SSE events (`event:` and `data:`
# lines, `sequence_number` on each) through response.completed with the usage. A request with
# `reasoning` gets a reasoning item first (its encrypted content if `include` asks for it),
# and REASONING_TOKENS of the output tokens are reported as reasoning: part of output_tokens.

REASONING_TOKENS = 3


def responses_routes(fake: FakeUpstream) -> list[web.RouteDef]:
    async def create_response(request: web.Request) -> web.StreamResponse:
        body = await fake.record(request)
        if fake.script.status >= 300:
            return web.json_response(error_body(fake), status=fake.script.status)
        check_response_request(body)
        if fake.script.malformed:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if body.get("stream"):
            return await _response_stream(request, fake, body)
        return web.json_response(response_object(fake, body, _output(fake, body)))

    return [web.post("/v1/responses", create_response)]


def check_response_request(body: dict[str, Any]) -> None:
    """What OpenAI refuses among the fields this fake reads."""
    if not isinstance(body.get("model"), str):
        raise Unreadable("you must provide a model parameter", "model")
    if not isinstance(body.get("input"), str | list):
        raise Unreadable("Invalid type for 'input': expected a string or an array.", "input")
    _typed(body, "stream", bool, "a boolean")
    _typed(body, "store", bool, "a boolean")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < 16):
        message = f"Invalid 'max_output_tokens': integer below minimum value 16 ({limit})."
        raise Unreadable(message, "max_output_tokens")


def response_usage(fake: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    s = fake.script
    if s.usage is not None:
        return s.usage
    reasoning = min(REASONING_TOKENS, s.output_tokens) if body.get("reasoning") else 0
    return {
        "input_tokens": s.input_tokens,
        "input_tokens_details": {"cached_tokens": s.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": s.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": s.input_tokens + s.output_tokens,
    }


def response_object(
    fake: FakeUpstream,
    body: dict[str, Any],
    output: list[dict[str, Any]],
    status: str = "completed",
    *,
    usage: bool = True,
) -> dict[str, Any]:
    text = body.get("text") or {}
    out: dict[str, Any] = {
        "id": "resp_fake0001",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "metadata": body.get("metadata") or {},
    }
    if usage and not fake.script.omit_usage:
        out["usage"] = response_usage(fake, body)
    return out


def _output(fake: FakeUpstream, body: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    if body.get("reasoning"):
        items.append(_reasoning_item(body))
    for n in range(fake.script.searches):  # each a web search, billed per call
        action = {"type": "search", "query": f"query {n}"}
        items.append({"id": f"ws_fake{n:04d}", "type": "web_search_call", "status": "completed",
                      "action": action})  # fmt: skip
    if fake.script.tool_call:
        name, arguments = fake.script.tool_call
        items.append(_call_item(name, orjson.dumps(arguments).decode(), "completed"))
    else:
        items.append(_message_item(fake.script.text, "completed"))
    return items


def _reasoning_item(body: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "rs_fake0001", "type": "reasoning", "summary": []}
    if "reasoning.encrypted_content" in (body.get("include") or ()):
        item["encrypted_content"] = "gAAAAfakeencryptedreasoning"
    return item


def _message_item(text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": "msg_fake0001",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [part] if status == "completed" else [],
    }


def _call_item(name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": "fc_fake0001",
        "type": "function_call",
        "status": status,
        "call_id": "call_fake0001",
        "name": name,
        "arguments": arguments,
    }


async def _response_stream(
    request: web.Request, fake: FakeUpstream, body: dict[str, Any]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    sequence = 0

    async def send(kind: str, **fields: Any) -> None:
        nonlocal sequence
        event = {"type": kind, "sequence_number": sequence, **fields}
        sequence += 1
        frame = f"event: {kind}\ndata: ".encode() + orjson.dumps(event) + b"\n\n"
        await response.write(frame)

    started = response_object(fake, body, [], "in_progress", usage=False)
    await send("response.created", response=started)
    await send("response.in_progress", response=started)
    output = _output(fake, body)
    for index, item in enumerate(output):
        if item["type"] in ("reasoning", "web_search_call"):
            await send("response.output_item.added", output_index=index, item=item)
            await send("response.output_item.done", output_index=index, item=item)
        elif item["type"] == "function_call":
            added = {**item, "arguments": "", "status": "in_progress"}
            await send("response.output_item.added", output_index=index, item=added)
            at = {"item_id": item["id"], "output_index": index}
            pieces = fake.split(item["arguments"])
            for piece in pieces[: fake.script.stall_after_chunks]:
                await send("response.function_call_arguments.delta", delta=piece, **at)
            if fake.script.stall_after_chunks is not None:
                await stall(request, fake)
                return response
            done = {"name": item["name"], "arguments": item["arguments"]}
            await send("response.function_call_arguments.done", **done, **at)
            await send("response.output_item.done", output_index=index, item=item)
        else:
            opening = _message_item("", "in_progress")
            await send("response.output_item.added", output_index=index, item=opening)
            at = {"item_id": item["id"], "output_index": index, "content_index": 0}
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            await send("response.content_part.added", part=empty, **at)
            for piece in fake.split()[: fake.script.stall_after_chunks]:
                await send("response.output_text.delta", delta=piece, logprobs=[], **at)
            if fake.script.stall_after_chunks is not None:
                await stall(request, fake)
                return response
            text = fake.script.text
            await send("response.output_text.done", text=text, logprobs=[], **at)
            await send("response.content_part.done", part=item["content"][0], **at)
            await send("response.output_item.done", output_index=index, item=item)
    await send("response.completed", response=response_object(fake, body, output))
    await response.write_eof()
    return response


# Embeddings (POST /v1/embeddings) ----------------------------------------------------------
# Answers as OpenAI does: a list of `embedding` objects, float vectors or, for
# `encoding_format: "base64"`, little-endian float32 in base64, and `usage` (the script's
# input_tokens; none with `omit_usage`). A vector is EMBEDDING_SIZE long unless `dimensions`
# asks, a pure function of its input, and exact in float32 (so base64 loses nothing).

EMBEDDING_SIZE = 8
MAX_DIMENSIONS = 3072  # text-embedding-3-large's size, the most any OpenAI model gives


def embeddings_routes(fake: FakeUpstream) -> list[web.RouteDef]:
    async def create_embeddings(request: web.Request) -> web.StreamResponse:
        body = await fake.record(request)
        script = fake.script
        if script.status >= 300:
            return web.json_response(error_body(fake), status=script.status)
        inputs = embedding_inputs(body)
        if script.malformed:
            return web.json_response({"object": "list", "data": "not a list of embeddings"})
        size = body.get("dimensions") or EMBEDDING_SIZE
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(vector(item, size), body)}
            for i, item in enumerate(inputs)
        ]
        out: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if not script.omit_usage:
            used = script.input_tokens
            out["usage"] = {"prompt_tokens": used, "total_tokens": used}
        return web.json_response(out)

    return [web.post("/v1/embeddings", create_embeddings)]


def embedding_inputs(body: dict[str, Any]) -> list[Any]:
    """The request's inputs, or what OpenAI says of a request that has none it can read."""
    if not isinstance(body.get("model"), str):
        raise Unreadable("you must provide a model parameter", "model")
    _typed(body, "dimensions", int, "an integer")
    if isinstance(body.get("dimensions"), int) and not 1 <= body["dimensions"] <= MAX_DIMENSIONS:
        raise Unreadable(f"dimensions must be 1 to {MAX_DIMENSIONS}", "dimensions")
    value = body.get("input")
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str | list) for v in value):
        return value
    raise Unreadable("'input' is invalid: expected a string or an array of them", "input")


def vector(item: str | list[int], size: int) -> list[float]:
    """The fake's embedding of one input: multiples of 1/256, exact in float32."""
    digest = hashlib.sha256(orjson.dumps(item)).digest()
    return [(digest[i % len(digest)] - 128) / 256 for i in range(size)]


def _encoded(values: list[float], body: dict[str, Any]) -> list[float] | str:
    if body.get("encoding_format") != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
