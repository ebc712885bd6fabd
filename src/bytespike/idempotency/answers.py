"""An answer kept for replay: HTTP status, Content-Type and body bytes exactly as first
sent (a stream's are its events, in order), and the replay of one.

Only what the first call produced is kept: the rate-limit headers and the request id of a
replay are its own (the first request's id travels as `Original-Request`). An answer past
MAX_BYTES is not kept: its stream is still passed on whole, but not copied further.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response, StreamingResponse

from bytespike.proxy.streaming import SSE_HEADERS

MAX_BYTES = 16 * 1024 * 1024  # a stored answer's largest size: a long answer is ~100 KiB
REPLAYED = "Idempotent-Replayed"
ORIGINAL = "Original-Request"
SSE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def whole(response: Response) -> Answer | None:
    """A whole (not streamed) answer as kept; None if it is too large to keep."""
    body = bytes(response.body)
    if len(body) > MAX_BYTES:
        return None
    return Answer(response.status_code, response.headers.get("content-type", ""), body)


class Copy:
    """What a stream sent, copied as it goes: its answer once it has ended (None if it sent
    nothing, or more than MAX_BYTES: then the copy stops growing)."""

    def __init__(self, status: int, content_type: str) -> None:
        self.status = status
        self.content_type = content_type
        self.pieces: list[bytes] = []
        self.size = 0

    def answer(self) -> Answer | None:
        if not 0 < self.size <= MAX_BYTES:
            return None
        return Answer(self.status, self.content_type, b"".join(self.pieces))

    async def through(self, source: AsyncIterable[Any]) -> AsyncIterator[bytes]:
        async for piece in source:
            self.size += len(piece)
            if self.size <= MAX_BYTES:
                self.pieces.append(piece)
            yield piece


def copy(response: StreamingResponse) -> Copy:
    """`response`'s bytes, copied as they leave. The stream settles only once it has ended,
    however it ended, so the copy is whole by then (the caller reads it at the settlement)."""
    copied = Copy(response.status_code, response.headers.get("content-type", SSE))
    response.body_iterator = copied.through(response.body_iterator)
    return copied


def replay(
    status: int, content_type: str, body: bytes, headers: dict[str, str], request_id: str | None
) -> Response:
    """The kept answer again, with this request's `headers` (its rate limit) and
    `Idempotent-Replayed: true`."""
    extra = {**headers, REPLAYED: "true", "content-type": content_type}
    if request_id:
        extra[ORIGINAL] = request_id
    if content_type.startswith(SSE):
        extra |= SSE_HEADERS
    return Response(body, status_code=status, headers=extra)
