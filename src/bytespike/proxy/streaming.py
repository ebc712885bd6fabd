"""Streaming answers: SSE framing, and the guarantee that a stream settles however it ends.

`respond` is the one shape of every metered stream, whatever the formats on either side:
the upstream's first event is awaited before answering (so a refusal keeps its HTTP
status); then each event becomes the client's frames. Whether the stream runs to its end,
the upstream breaks, or the client goes away (Starlette cancels the generator), the
response's `finally` closes the upstream call and settles inside a shielded cancel scope,
so tokens already streamed are billed and the upstream stops generating. A stopping server
that cuts a stream past its grace period cancels it like a client leaving: it settles as
`client_closed`. Until it has settled, a stream counts as in flight (proxy/inflight.py),
so the server waits for the settlement before it lets go of the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import anyio
import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from bytespike.proxy import estimate
from bytespike.proxy.inflight import InFlight
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
            self.output_bytes += estimate.output_bytes(choice.get("delta") or {})
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
T_contra = TypeVar("T_contra", contravariant=True)


async def first(source: AsyncGenerator[T, None]) -> T:
    """A stream's first event; UpstreamMalformed if it ends before one."""
    try:
        return await anext(source)
    except StopAsyncIteration:
        raise UpstreamMalformed("the upstream's stream ended before its first event") from None


async def _chain(head: T, rest: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    yield head
    async for item in rest:
        yield item


class Framer(Protocol[T_contra]):
    """How a stream's items become the client's bytes (a pipeline Exchange is one)."""

    def frames(self, item: T_contra, meter: Meter) -> Iterable[bytes]: ...

    def closing(self) -> Iterable[bytes]: ...

    def broken(self, failure: UpstreamFailure) -> bytes: ...


async def respond(
    framer: Framer[T],
    source: AsyncGenerator[T, None],
    *,
    settle: Callable[[Meter], Awaitable[object]],
    refused: Callable[[UpstreamFailure], Awaitable[Response]],
    headers: dict[str, str],
    calls: InFlight,
) -> Response:
    """Stream `source` to the client: `framer.frames` turns each upstream event into the
    client's bytes (and feeds the meter), `closing` ends a complete stream, `broken` is the
    error frame of a stream the upstream breaks; `refused` answers (and settles) when the
    upstream refuses at once; `settle` settles whatever the stream carried. The stream
    counts in `calls` until it has settled."""
    try:
        head = await first(source)
    except UpstreamFailure as failure:
        return await refused(failure)
    meter = Meter()

    # An upstream event's frames leave together, as one write: translated to Responses or
    # Messages events, one chunk is often several (a Responses stream's first is four).
    async def events() -> AsyncGenerator[bytes, None]:
        async with contextlib.aclosing(source):
            try:
                async for item in _chain(head, source):
                    if frames := b"".join(framer.frames(item, meter)):
                        yield frames
            except UpstreamFailure as failure:
                meter.broke(failure)
                yield framer.broken(failure)
                return
        meter.status = "ok"
        if frames := b"".join(framer.closing()):
            yield frames

    return _Metered(events(), meter, settle, headers, calls)


class _Metered(StreamingResponse):
    """A metered stream's response: however it ends (run to its end, the upstream broken,
    the client gone, or cut by a stopping server, even before its first byte was sent),
    the upstream call is closed and the stream settled before the response lets go.

    A stream that runs to its end settles inside its body, before the body's end reaches
    the client, so a client that has read the whole stream finds its call settled (its
    balance, a replay of its Idempotency-Key); the response's own `finally` settles the
    rest, once."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        meter: Meter,
        settle: Callable[[Meter], Awaitable[object]],
        headers: dict[str, str],
        calls: InFlight,
    ) -> None:
        super().__init__(
            self._body(events), media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )
        self._events = events
        self._meter = meter
        self._settle = settle
        self._calls = calls
        self._settled = False
        calls.enter()  # from its making: a cut before the body starts still settles it

    async def _body(self, events: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        try:
            async for piece in events:
                yield piece
        finally:
            await self._finish()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        """Close the upstream call and settle, once. Shielded: on a client disconnect or a
        cut the caller's scope is cancelled, and the settlement must still happen."""
        if self._settled:
            return
        self._settled = True
        with anyio.CancelScope(shield=True):
            try:
                await self._events.aclose()
                await self._settle(self._meter)
            finally:
                self._calls.leave()
