"""Streaming answers: SSE framing, and the guarantee that a stream settles however it ends.

`respond` is the one shape of every metered stream, whatever the formats on either side:
the upstream's first event is awaited before answering (so a refusal keeps its HTTP
status); then each event becomes the client's frames. Whether the stream runs to its end,
the upstream breaks, or the client goes away (Starlette cancels the generator), the
`finally` closes the upstream call and settles inside a shielded cancel scope, so tokens
already streamed are billed and the upstream stops generating.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import orjson
from starlette.responses import Response, StreamingResponse

from bytespike.billing.metering import Ticket
from bytespike.proxy import pipeline
from bytespike.proxy.pipeline import Admitted, Gateway
from bytespike.translate.anthropic import fold_stream_usage
from bytespike.upstream.base import (
    JSONObject,
    UpstreamFailure,
    UpstreamMalformed,
    Usage,
    usage_from_openai,
)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def data(payload: JSONObject) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event(name: str, payload: JSONObject) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass
class Meter:
    """What a stream has carried so far: reported usage, output bytes sent, how it ended."""

    usage: Usage | None = None
    final_usage: bool = False  # the upstream sent its closing usage (not just a start count)
    output_bytes: int = 0
    status: str = "client_closed"  # until the stream proves otherwise
    http_status: int = 200

    def openai_chunk(self, chunk: JSONObject) -> bool:
        """Count a chunk's output; True when it is the closing usage chunk."""
        for choice in chunk.get("choices") or ():
            self.output_bytes += pipeline.output_bytes(choice.get("delta") or {})
        usage = usage_from_openai(chunk.get("usage"))
        if usage is None:
            return False
        self.usage, self.final_usage = usage, True
        return True

    def anthropic_event(self, name: str, payload: JSONObject) -> None:
        if name == "content_block_delta":
            delta = payload.get("delta") or {}
            text = delta.get("text") or delta.get("partial_json") or delta.get("thinking")
            if isinstance(text, str):
                self.output_bytes += len(text.encode())
        self.usage = fold_stream_usage(name, payload, self.usage)
        if name == "message_delta" and payload.get("usage"):
            self.final_usage = True

    def broke(self, failure: UpstreamFailure) -> None:
        self.usage = failure.usage or self.usage
        self.status = failure.usage_status
        self.http_status = failure.status


T = TypeVar("T")


async def _first(source: AsyncGenerator[T, None]) -> T:
    try:
        return await anext(source)
    except StopAsyncIteration:
        raise UpstreamMalformed("the upstream's stream ended before its first event") from None


async def _chain(head: T, rest: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    yield head
    async for item in rest:
        yield item


async def respond(
    gw: Gateway,
    call: Admitted,
    ticket: Ticket,
    body: dict[str, Any],
    source: AsyncGenerator[T, None],
    *,
    frames: Callable[[T, Meter], Iterable[bytes]],
    closing: Callable[[], Iterable[bytes]],
    broken: Callable[[UpstreamFailure], bytes],
    refused: Callable[[UpstreamFailure, dict[str, str]], Response],
) -> Response:
    """Stream `source` to the client: `frames` turns each upstream event into the client's
    bytes (and feeds the meter), `closing` ends a complete stream, `broken` is the error
    frame of a stream the upstream breaks, `refused` the answer when it refuses at once."""
    try:
        head = await _first(source)
    except UpstreamFailure as failure:
        await pipeline.settle_failure(gw, call, ticket, failure, stream=True)
        return refused(failure, call.headers)
    meter = Meter()

    async def events() -> AsyncGenerator[bytes, None]:
        async with contextlib.aclosing(source):
            try:
                async for item in _chain(head, source):
                    for frame in frames(item, meter):
                        yield frame
            except UpstreamFailure as failure:
                meter.broke(failure)
                yield broken(failure)
                return
        meter.status = "ok"
        for frame in closing():
            yield frame

    return _metered(events(), meter, _settler(gw, call, ticket, body), call.headers)


def _metered(
    events: AsyncGenerator[bytes, None],
    meter: Meter,
    settle: Callable[[Meter], Awaitable[object]],
    headers: dict[str, str],
) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for piece in events:
                yield piece
        finally:
            # Shielded: on a client disconnect this scope is cancelled, and the settlement
            # must still happen (and the upstream call be closed) before we let go.
            with anyio.CancelScope(shield=True):
                await events.aclose()
                await settle(meter)

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
    )


def _settler(
    gw: Gateway, call: Admitted, ticket: Ticket, body: dict[str, Any]
) -> Callable[[Meter], Awaitable[int]]:
    """How a stream settles: reported usage; if the client left, or the upstream finished
    without reporting, an estimate from what was streamed (pipeline.estimated)."""

    async def settle(m: Meter) -> int:
        usage = m.usage
        if m.status == "client_closed" or (m.status == "ok" and not m.final_usage):
            usage = pipeline.estimated(usage, body, m.output_bytes)
        return await pipeline.settle(
            gw, call, ticket, usage, status=m.status, http_status=m.http_status, stream=True
        )

    return settle
