"""proxy/streaming.py: the frames an upstream event becomes leave together, in one body
message (one write), and the stream still settles once, however it ends."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

from starlette.responses import Response
from starlette.types import Message

from bytespike.proxy.inflight import InFlight
from bytespike.proxy.streaming import Meter, respond
from bytespike.upstream.base import UpstreamFailure

# What each upstream event becomes: a translated stream's first chunk is several events.
FRAMES = {"first": [b"a\n\n", b"b\n\n"], "quiet": [], "delta": [b"c\n\n"]}


class Framer:
    def frames(self, item: str, meter: Meter) -> Iterable[bytes]:
        return FRAMES[item]

    def closing(self) -> Iterable[bytes]:
        return [b"x\n\n", b"y\n\n"]

    def broken(self, failure: UpstreamFailure) -> bytes:
        return b"broken\n\n"


async def upstream(*items: str, fail: bool = False) -> AsyncGenerator[str, None]:
    for item in items:
        yield item
    if fail:
        raise UpstreamFailure("the upstream went away")


async def streamed(source: AsyncGenerator[str, None]) -> tuple[list[bytes], list[str]]:
    """The body messages the client gets, and how the stream settled."""
    settled: list[str] = []

    async def settle(meter: Meter) -> None:
        settled.append(meter.status)

    async def refused(failure: UpstreamFailure) -> Response:
        raise AssertionError("the first event came")

    response = await respond(
        Framer(), source, settle=settle, refused=refused, headers={}, calls=InFlight()
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.4"}}
    await response(scope, receive, send)
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]
    return bodies, settled


async def test_an_events_frames_are_one_body_message_and_an_event_without_any_is_none() -> None:
    bodies, settled = await streamed(upstream("first", "quiet", "delta"))
    assert bodies == [b"a\n\nb\n\n", b"c\n\n", b"x\n\ny\n\n"]
    assert settled == ["ok"]


async def test_a_broken_stream_ends_with_its_error_frame_and_settles_once() -> None:
    bodies, settled = await streamed(upstream("first", fail=True))
    assert bodies == [b"a\n\nb\n\n", b"broken\n\n"]
    assert settled == ["unavailable"]
