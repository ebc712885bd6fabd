"""Server-Sent Events, both ways: `events()` reads them from an upstream's response body,
`encode()` writes them for our clients (https://html.spec.whatwg.org/#server-sent-events).

Failure policy: the parser never raises on odd input (unknown fields, comments, a stray
byte-order mark are skipped as the spec says); an event cut off by the end of the body is
dropped, not dispatched, so a broken stream never yields half an event. Transport errors
from the body propagate unchanged for the provider to map.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

Event = tuple[str | None, str]


class _Response(Protocol):
    def chunks(self) -> AsyncIterator[bytes]: ...


class Parser:
    """Incremental SSE parser: feed it bytes as they arrive, get whole events back.

    Lines end in LF or CRLF (a lone CR is not a line end here: no upstream we speak uses
    it, and honouring it would mean scanning every byte twice)."""

    __slots__ = ("_data", "_event", "_partial", "_started")

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # pieces of a line not yet ended
        self._data: list[str] = []
        self._event: str | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[Event]:
        if b"\n" not in chunk:  # mid-line: most of a large event's pieces
            self._partial.append(chunk)
            return []
        if self._partial:
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            self._partial.clear()
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if tail:
            self._partial.append(tail)
        dispatched: list[Event] = []
        for raw in lines:
            event = self._line(raw[:-1] if raw.endswith(b"\r") else raw)
            if event is not None:
                dispatched.append(event)
        return dispatched

    def _line(self, raw: bytes) -> Event | None:
        line = raw.decode("utf-8", errors="replace")
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # `id` and `retry` only matter to reconnecting browsers; we never reconnect.
        return None

    def _dispatch(self) -> Event | None:
        event, self._event = self._event, None
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        return (event or None, data)


async def events(response: _Response) -> AsyncIterator[Event]:
    """(event name or None, data) for each event in an upstream's response body."""
    parser = Parser()
    async for chunk in response.chunks():
        for event in parser.feed(chunk):
            yield event


def encode(data: bytes, event: str | None = None) -> bytes:
    """One SSE event carrying `data` (split over several `data:` lines if it has newlines)."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    if b"\n" not in data and b"\r" not in data:  # always so for orjson output
        return head + b"data: " + data + b"\n\n"
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
