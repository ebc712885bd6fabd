"""AnthropicProvider against the fake Anthropic API over real HTTP: the OpenAI lingua franca
(complete, stream), native Messages passthrough, usage, and every way the upstream fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import orjson
import pydantic
import pytest
from aiohttp import web
from anthropic.types import Message, RawMessageStreamEvent

from bytespike.upstream.anthropic import AnthropicProvider
from bytespike.upstream.base import (
    Endpoint,
    UpstreamError,
    UpstreamMalformed,
    UpstreamTimeout,
    UpstreamUnavailable,
    Usage,
    usage_from_openai,
)
from bytespike.upstream.client import Client
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.base import FakeUpstream, serve
from tests.openai_schema import assert_valid

STREAM_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
API_KEY = "sk-ant-test"


def chat(**extra: Any) -> dict[str, Any]:
    """A request as the proxy hands it to a provider."""
    return {
        "model": "claude-fake-1",
        "max_completion_tokens": 256,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ],
        **extra,
    }


def native(**extra: Any) -> dict[str, Any]:
    """A request as an Anthropic client sends it."""
    return {
        "model": "claude-fake-1",
        "max_tokens": 256,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello."}],
        **extra,
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with fake_anthropic.running() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = Client(100)
    yield client
    await client.close()


def provider_for(url: str, client: Client, read_timeout: float = 10.0) -> AnthropicProvider:
    endpoint = Endpoint(
        base_url=url, api_key=API_KEY, connect_timeout=2.0, read_timeout=read_timeout
    )
    return AnthropicProvider(name="anthropic", endpoint=endpoint, client=client)


@pytest.fixture
def provider(fake: FakeUpstream, client: Client) -> AnthropicProvider:
    return provider_for(fake.url, client)


# --- The fake speaks Anthropic's real wire format ----------------------------------------


async def test_fake_is_understood_by_the_official_sdk(fake: FakeUpstream) -> None:
    fake.script.cached_tokens = 4
    client = anthropic.AsyncAnthropic(base_url=fake.url, api_key=API_KEY, max_retries=0)
    try:
        message = await client.messages.create(**native())
        assert message.content[0].text == fake.script.text  # type: ignore[union-attr]
        assert message.usage.cache_read_input_tokens == 4
        async with client.messages.stream(**native()) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
        assert text == fake.script.text
        assert final.usage.output_tokens == fake.script.output_tokens
    finally:
        await client.close()


# --- OpenAI lingua franca ----------------------------------------------------------------


async def test_complete(fake: FakeUpstream, provider: AnthropicProvider) -> None:
    fake.script.cached_tokens = 5

    completion = await provider.complete(chat(temperature=0.5))

    assert_valid("CreateChatCompletionResponse", completion)
    assert completion["choices"][0]["message"]["content"] == fake.script.text
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert usage_from_openai(completion["usage"]) == Usage(12, 7, 5)
    assert fake.paths == ["/v1/messages"]
    headers = fake.headers[0]
    assert headers["x-api-key"] == API_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["Content-Type"] == "application/json"
    assert fake.requests[0] == {
        "model": "claude-fake-1",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        "temperature": 0.5,
        "stream": False,
    }


async def test_complete_with_tool_use(fake: FakeUpstream, provider: AnthropicProvider) -> None:
    fake.script.tool_call = ("get_weather", {"city": "Paris"})
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}},
    }

    completion = await provider.complete(chat(tools=[tool], tool_choice="required"))

    assert_valid("CreateChatCompletionResponse", completion)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == fake_anthropic.TOOL_USE_ID
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    sent = fake.requests[0]
    assert sent["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}}]
    assert sent["tool_choice"] == {"type": "any"}


async def test_stream(fake: FakeUpstream, provider: AnthropicProvider) -> None:
    fake.script.cached_tokens = 2
    chunks = [c async for c in provider.stream(chat(stream=True))]

    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == fake.script.text
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert usage_from_openai(chunks[-1]["usage"]) == Usage(12, 7, 2)
    assert fake.requests[0]["stream"] is True


async def test_stream_with_tool_use(fake: FakeUpstream, provider: AnthropicProvider) -> None:
    fake.script.tool_call = ("get_weather", {"city": "Oslo", "days": 3})
    chunks = [c async for c in provider.stream(chat(stream=True))]

    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    calls = [
        t for c in chunks if c["choices"] for t in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert calls[0]["id"] == fake_anthropic.TOOL_USE_ID
    assert calls[0]["function"]["name"] == "get_weather"
    arguments = "".join(t["function"]["arguments"] for t in calls)
    assert orjson.loads(arguments) == {"city": "Oslo", "days": 3}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


async def test_stream_without_final_usage_bills_what_message_start_said(
    fake: FakeUpstream, provider: AnthropicProvider
) -> None:
    fake.script.omit_usage = True
    chunks = [c async for c in provider.stream(chat(stream=True))]
    # message_start's output count (1) is all Anthropic said; input is known from the start.
    assert usage_from_openai(chunks[-1]["usage"]) == Usage(12, 1, 0)


# --- Native Messages ---------------------------------------------------------------------


async def test_native_messages(fake: FakeUpstream, provider: AnthropicProvider) -> None:
    body = native(top_k=5, metadata={"user_id": "u1"})
    message = await provider.messages(body)

    parsed = Message.model_validate(message)
    assert parsed.content[0].text == fake.script.text  # type: ignore[union-attr]
    assert parsed.stop_reason == "end_turn"
    assert fake.requests[0] == {**body, "stream": False}  # untouched otherwise


async def test_native_messages_stream(fake: FakeUpstream, provider: AnthropicProvider) -> None:
    fake.script.cached_tokens = 3
    events = [e async for e in provider.messages_stream(native(stream=True))]

    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "ping" in names
    for name, data in events:
        assert data["type"] == name
        if name != "ping":
            STREAM_EVENT.validate_python(data)
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == fake.script.text
    assert fake.requests[0]["stream"] is True


# --- Failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (429, "rate_limit_error")],
)
async def test_4xx_passes_through(
    fake: FakeUpstream, provider: AnthropicProvider, status: int, kind: str
) -> None:
    fake.script.status = status
    for call in (lambda: provider.complete(chat()), lambda: provider.messages(native())):
        with pytest.raises(UpstreamError) as caught:
            await call()
        assert (caught.value.status, caught.value.type) == (status, kind)
        assert caught.value.message == fake.script.error_message
    with pytest.raises(UpstreamError) as streamed:
        await anext(provider.messages_stream(native(stream=True)))
    assert streamed.value.status == status


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (529, "overloaded_error")])
async def test_5xx_becomes_502(
    fake: FakeUpstream, provider: AnthropicProvider, status: int, kind: str
) -> None:
    fake.script.status = status
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(chat())
    assert (caught.value.status, caught.value.upstream_status, caught.value.type) == (
        502,
        status,
        kind,
    )
    with pytest.raises(UpstreamError):
        await anext(provider.stream(chat(stream=True)))


# Timeouts, refused connections and malformed answers on the OpenAI-shaped calls are in
# test_upstream_transport.py, for every provider; these are the native Messages calls.


async def test_timeout_on_a_native_stream(fake: FakeUpstream, client: Client) -> None:
    fake.script.delay = 1.0
    provider = provider_for(fake.url, client, read_timeout=0.2)
    with pytest.raises(UpstreamTimeout):
        await anext(provider.messages_stream(native(stream=True)))


async def test_malformed_native_answer(fake: FakeUpstream, provider: AnthropicProvider) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamMalformed):
        await provider.messages(native())


async def test_stalled_stream_times_out_with_usage_so_far(
    fake: FakeUpstream, client: Client
) -> None:
    fake.script.stall_after_chunks = 1
    provider = provider_for(fake.url, client, read_timeout=0.3)
    received = []
    with pytest.raises(UpstreamTimeout) as caught:
        async for chunk in provider.stream(chat(stream=True)):
            received.append(chunk)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in received) == fake.split()[0]
    assert caught.value.usage == Usage(12, 1, 0)  # message_start's counts


async def test_abandoned_stream_releases_the_upstream(
    fake: FakeUpstream, provider: AnthropicProvider
) -> None:
    fake.script.stall_after_chunks = 1
    stream = provider.stream(chat(stream=True))
    assert (await anext(stream))["choices"][0]["delta"]["role"] == "assistant"
    assert (await anext(stream))["choices"][0]["delta"]["content"] == fake.split()[0]
    await stream.aclose()  # what the proxy does when its client goes away
    await asyncio.wait_for(fake.disconnected.wait(), timeout=5)


# Failures the script cannot describe: a hand-written upstream that sends raw SSE bytes.

MESSAGE_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":30,"cache_read_input_tokens":10,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hel"}}\n\n'
)


def raw_upstream(
    tail: bytes, *, drop: bool = False
) -> Callable[[FakeUpstream], list[web.RouteDef]]:
    def routes(fake: FakeUpstream) -> list[web.RouteDef]:
        async def messages(request: web.Request) -> web.StreamResponse:
            await fake.record(request)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(MESSAGE_START + tail)
            if drop and request.transport is not None:
                request.transport.close()  # the connection dies mid-answer
                return response
            await response.write_eof()
            return response

        return [web.post("/v1/messages", messages)]

    return routes


async def collect(provider: AnthropicProvider) -> list[tuple[str, dict[str, Any]]]:
    return [e async for e in provider.messages_stream(native(stream=True))]


async def test_error_event_mid_stream(client: Client) -> None:
    error = (
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    async with serve(raw_upstream(error)) as upstream:
        provider = provider_for(upstream.url, client)
        with pytest.raises(UpstreamError) as caught:
            await collect(provider)
        with pytest.raises(UpstreamError) as translated:
            [c async for c in provider.stream(chat(stream=True))]
    for failure in (caught.value, translated.value):
        assert (failure.status, failure.upstream_status) == (502, 529)
        assert (failure.type, failure.message) == ("overloaded_error", "Overloaded")
        assert failure.usage == Usage(40, 1, 10)


async def test_connection_dropped_mid_stream(client: Client) -> None:
    async with serve(raw_upstream(b"", drop=True)) as upstream:
        with pytest.raises(UpstreamUnavailable) as caught:
            await collect(provider_for(upstream.url, client))
    assert caught.value.usage == Usage(40, 1, 10)


async def test_stream_ending_before_message_stop(client: Client) -> None:
    async with serve(raw_upstream(b"")) as upstream:
        with pytest.raises(UpstreamUnavailable, match="message_stop") as caught:
            await collect(provider_for(upstream.url, client))
    assert caught.value.usage == Usage(40, 1, 10)
