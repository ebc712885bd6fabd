"""A fake OpenAI-compatible upstream cheap enough not to dominate the benchmark.

A raw asyncio HTTP/1.1 keep-alive server: it parses just enough of each request (the
Content-Length and the JSON body's `model`, `stream` and `stream_options`) and answers with
response bytes built once per distinct request shape. `POST .../chat/completions` answers a
`chat.completion` with `usage`, or with `"stream": true` an SSE stream of
`chat.completion.chunk` objects (a usage chunk when `stream_options.include_usage`) ending
in `data: [DONE]`. `GET /healthz` answers 200; anything else 404.

    python bench/fake_upstream.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, cast

PROMPT_TOKENS = 9
PIECES = ("Hello", " from", " the", " bench", ".")
COMPLETION_TOKENS = len(PIECES)
CREATED = 1_767_225_600
MAX_CACHED_SHAPES = 64
HEADER_END = b"\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
HEALTHY = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def completion_body(model: str) -> bytes:
    message = {"role": "assistant", "content": "".join(PIECES)}
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": _usage(),
        }
    ).encode()


def _chunk(model: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": choices,
        **extra,
    }


def stream_events(model: str, include_usage: bool) -> list[bytes]:
    """The SSE events of one streamed answer, each `data: ...\\n\\n`."""
    deltas = [{"role": "assistant", "content": ""}, *({"content": p} for p in PIECES)]
    chunks = [_chunk(model, [{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas]
    chunks.append(_chunk(model, [{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if include_usage:
        chunks.append(_chunk(model, [], usage=_usage()))
    events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
    return [*events, b"data: [DONE]\n\n"]


def json_response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + HEADER_END + body


def sse_response(events: list[bytes]) -> bytes:
    """One chunked-encoding frame per event, as a real upstream flushes them."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked"
    frames = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    return head + HEADER_END + frames + b"0\r\n\r\n"


class Responses:
    """Response bytes per request shape (model, stream, include_usage), built on first use."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool, bool], bytes] = {}

    def for_body(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
            model = str(request.get("model", "fake"))
            stream = request.get("stream") is True
            options = request.get("stream_options") or {}
            include_usage = stream and options.get("include_usage") is True
        except (ValueError, AttributeError):
            return BAD_REQUEST
        shape = (model, stream, include_usage)
        cached = self._cache.get(shape)
        if cached is None:
            if len(self._cache) >= MAX_CACHED_SHAPES:
                self._cache.clear()
            cached = self._build(*shape)
            self._cache[shape] = cached
        return cached

    @staticmethod
    def _build(model: str, stream: bool, include_usage: bool) -> bytes:
        if stream:
            return sse_response(stream_events(model, include_usage))
        return json_response(completion_body(model))


class HttpProtocol(asyncio.Protocol):
    """One keep-alive connection; handles pipelined requests in order."""

    def __init__(self, responses: Responses) -> None:
        self._responses = responses
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and self._handle_one():
            pass

    def _handle_one(self) -> bool:
        """Answer the first complete request in the buffer; False if there is none yet."""
        end = self._buffer.find(HEADER_END)
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).lower()
        try:
            length = _content_length(head)
        except ValueError:
            self._respond(b"", b"")
            return False
        total = end + len(HEADER_END) + length
        if len(self._buffer) < total:
            return False
        body = bytes(self._buffer[end + len(HEADER_END) : total])
        del self._buffer[:total]
        self._respond(head, body)
        return True

    def _respond(self, head: bytes, body: bytes) -> None:
        assert self._transport is not None
        request_line = head.split(b"\r\n", 1)[0]
        if request_line.startswith(b"post ") and b"/chat/completions" in request_line:
            answer = self._responses.for_body(body)
        elif request_line.startswith(b"get /healthz"):
            answer = HEALTHY
        elif request_line:
            answer = NOT_FOUND
        else:
            answer = BAD_REQUEST
        self._transport.write(answer)
        if answer is BAD_REQUEST or b"\r\nconnection: close" in head:
            self._transport.close()
            self._transport = None


def _content_length(head: bytes) -> int:
    marker = b"\r\ncontent-length:"
    start = head.find(marker)
    if start < 0:
        return 0
    stop = head.find(b"\r\n", start + len(marker))
    return int(head[start + len(marker) : stop if stop >= 0 else None])


async def serve(host: str, port: int) -> None:
    responses = Responses()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(responses), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
