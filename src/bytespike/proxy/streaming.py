"""Streaming answers: SSE framing, and the guarantee that a stream settles however it ends.

`metered` wraps a format's event generator. Whether the stream ran to its end, the upstream
broke, or the client went away (Starlette cancels the generator), the `finally` runs the
settlement inside a shielded cancel scope, after closing the upstream call, so tokens
already streamed are billed and the upstream stops generating.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import orjson
from starlette.responses import StreamingResponse

from bytespike.billing.metering import Ticket
from bytespike.proxy import pipeline
from bytespike.proxy.pipeline import Admitted, Gateway
from bytespike.upstream.base import JSONObject, UpstreamMalformed, Usage

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def data(payload: JSONObject) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event(name: str, payload: JSONObject) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass
class Meter:
    """What a stream has carried so far: reported usage and output bytes sent."""

    usage: Usage | None = None
    final_usage: bool = False  # the upstream sent its closing usage (not just a start count)
    output_bytes: int = 0
    status: str = "client_closed"  # until the stream proves otherwise
    http_status: int = 200
    finished: bool = False
    notes: list[str] = field(default_factory=list)

    def openai_chunk(self, chunk: JSONObject) -> None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str):
                self.output_bytes += len(content.encode())
            for call in delta.get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments")
                if isinstance(arguments, str):
                    self.output_bytes += len(arguments.encode())

    def anthropic_event(self, name: str, payload: JSONObject) -> None:
        if name == "content_block_delta":
            delta = payload.get("delta") or {}
            text = delta.get("text") or delta.get("partial_json") or delta.get("thinking")
            if isinstance(text, str):
                self.output_bytes += len(text.encode())


T = TypeVar("T")


async def first(source: AsyncGenerator[T, None]) -> T:
    """The stream's first item, awaited before any answer goes out: an upstream that refuses
    the call does so here, and the client still gets that refusal's HTTP status."""
    try:
        return await anext(source)
    except StopAsyncIteration:
        raise UpstreamMalformed("the upstream's stream ended before its first event") from None


async def chain(head: T, rest: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    yield head
    async for item in rest:
        yield item


def metered(
    events: AsyncIterator[bytes],
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
                await events.aclose()  # type: ignore[attr-defined]
                await settle(meter)

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
    )


def settler(
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
