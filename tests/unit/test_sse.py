"""The SSE parser and writer on streams as OpenAI, Anthropic and Gemini send them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bytespike.upstream import sse

OPENAI = (
    b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"H\xc3\xa9llo"}}]}\n\n'
    b'data: {"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":3}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC = (
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b": keep-alive comment\n\n"
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)
GEMINI = b'data: {"candidates": [1]}\r\n\r\ndata: {"candidates": [2]}\r\n\r\n'


def parse(stream: bytes, piece: int) -> list[sse.Event]:
    parser = sse.Parser()
    events: list[sse.Event] = []
    for start in range(0, len(stream), piece):
        events += parser.feed(stream[start : start + piece])
    return events


@pytest.mark.parametrize("piece", [1, 2, 7, 64, 10_000])
def test_openai_stream_gives_the_same_events_however_the_bytes_arrive(piece: int) -> None:
    # piece=1 splits the two-byte "é" across reads.
    assert parse(OPENAI, piece) == [
        (None, '{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Héllo"}}]}'),
        (None, '{"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":3}}'),
        (None, "[DONE]"),
    ]


@pytest.mark.parametrize("piece", [1, 5, 10_000])
def test_event_names_are_kept_and_comments_skipped(piece: int) -> None:
    assert parse(ANTHROPIC, piece) == [
        ("message_start", '{"type":"message_start"}'),
        ("ping", '{"type": "ping"}'),
        ("message_stop", '{"type":"message_stop"}'),
    ]


@pytest.mark.parametrize("piece", [1, 3, 10_000])
def test_crlf_framing_as_gemini_sends_it(piece: int) -> None:
    assert parse(GEMINI, piece) == [(None, '{"candidates": [1]}'), (None, '{"candidates": [2]}')]


def test_multi_line_data_is_joined_with_newlines() -> None:
    stream = b"data: first\ndata:second\ndata:  third\ndata\n\n"
    # One space after the colon is the separator; any more are data. A bare "data" adds "".
    assert parse(stream, 100) == [(None, "first\nsecond\n third\n")]


def test_an_event_cut_off_by_the_end_of_the_body_is_not_dispatched() -> None:
    assert parse(b"data: whole\n\ndata: half an event", 100) == [(None, "whole")]
    assert parse(b"data: whole\n\ndata: no blank line yet\n", 100) == [(None, "whole")]


def test_events_without_data_and_unknown_fields_dispatch_nothing() -> None:
    stream = b"\xef\xbb\xbfevent: lonely\n\nid: 7\nretry: 100\nfoo: bar\n\ndata: x\n\n"
    assert parse(stream, 100) == [(None, "x")]


class Response:
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def chunks(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


async def test_events_reads_a_response_body_incrementally() -> None:
    pieces = [OPENAI[:10], OPENAI[10:90], OPENAI[90:]]
    got = [event async for event in sse.events(Response(pieces))]
    assert [data for _, data in got][-1] == "[DONE]"
    assert len(got) == 3


def test_encode_writes_one_data_line_for_json() -> None:
    assert sse.encode(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert sse.encode(b'{"type":"ping"}', "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'


@pytest.mark.parametrize("data", ["plain", "two\nlines", "crlf\r\nand cr\rend", "trailing\n", ""])
def test_encoded_events_parse_back_to_the_same_data(data: str) -> None:
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert parse(sse.encode(data.encode(), "named"), 3) == [("named", expected)]
