"""OpenAIProvider against a fake OpenAI server over real HTTP: answers, streams, tool
calls, usage, and every way the upstream can fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from bytespike.upstream import openai
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
from bytespike.upstream.openai import OpenAIProvider
from tests.fakes import openai as fake_openai
from tests.fakes.base import FakeUpstream, serve
from tests.openai_schema import assert_valid

Make = Callable[..., OpenAIProvider]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = Client(100)
    yield client
    await client.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with fake_openai.running() as fake:
        yield fake


@pytest.fixture
def make(client: Client) -> Make:
    def make(url: str, *, read_timeout: float = 5.0, **kwargs: Any) -> OpenAIProvider:
        endpoint = Endpoint(base_url=url, api_key="sk-test", read_timeout=read_timeout)
        return OpenAIProvider(name="openai", endpoint=endpoint, client=client, **kwargs)

    return make


def request(**extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "Say hello"}]
    return {"model": "gpt-test", "messages": messages, "max_completion_tokens": 50, **extra}


async def collect(provider: OpenAIProvider, body: dict[str, Any]) -> list[dict[str, Any]]:
    chunks = [chunk async for chunk in provider.stream(body)]
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    return chunks


async def test_complete_returns_the_upstreams_answer(fake: FakeUpstream, make: Make) -> None:
    fake.script.cached_tokens = 4
    out = await make(fake.url).complete(request())
    assert_valid("CreateChatCompletionResponse", out)
    assert out["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert usage_from_openai(out["usage"]) == Usage(12, 7, 4)
    assert fake.paths == ["/v1/chat/completions"]
    assert fake.headers[0]["Authorization"] == "Bearer sk-test"
    assert fake.requests[0]["max_completion_tokens"] == 50
    assert "stream_options" not in fake.requests[0]


async def test_compat_servers_get_max_tokens_and_no_key(fake: FakeUpstream, client: Client) -> None:
    endpoint = Endpoint(base_url=fake.url, api_key=None)
    provider = OpenAIProvider(
        name="vllm", endpoint=endpoint, client=client, max_tokens_field="max_tokens"
    )
    await provider.complete(request())
    assert fake.requests[0]["max_tokens"] == 50
    assert "max_completion_tokens" not in fake.requests[0]
    assert "Authorization" not in fake.headers[0]


async def test_stream_yields_chunks_then_usage(fake: FakeUpstream, make: Make) -> None:
    chunks = await collect(make(fake.url), request(stream=True))
    # Usage is asked for even though the client did not: it is what we bill.
    assert fake.requests[0]["stream_options"] == {"include_usage": True}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from the fake upstream."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert usage_from_openai(chunks[-1]["usage"]) == Usage(12, 7, 0)


async def test_stream_without_usage_ends_normally(fake: FakeUpstream, make: Make) -> None:
    fake.script.omit_usage = True
    chunks = await collect(make(fake.url), request(stream=True))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any(c.get("usage") for c in chunks)


async def test_tool_calls(fake: FakeUpstream, make: Make) -> None:
    fake.script.tool_call = ("get_weather", {"city": "Paris"})
    out = await make(fake.url).complete(request(tools=[]))
    assert_valid("CreateChatCompletionResponse", out)
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    (call,) = out["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}

    chunks = await collect(make(fake.url), request(stream=True))
    pieces = [
        call["function"].get("arguments", "")
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls", ())
    ]
    assert orjson.loads("".join(pieces)) == {"city": "Paris"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("status", "client_status"), [(400, 400), (401, 401), (429, 429), (500, 502), (503, 502)]
)
async def test_error_statuses_pass_through_with_the_upstreams_message(
    fake: FakeUpstream, make: Make, status: int, client_status: int
) -> None:
    fake.script.status = status
    provider = make(fake.url)
    for call in (provider.complete, lambda body: collect(provider, body)):
        with pytest.raises(UpstreamError) as caught:
            await call(request(stream=call is not provider.complete))
        assert caught.value.status == client_status
        assert caught.value.message == "upstream says no"
    expected = {401: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}
    if status in expected:
        assert caught.value.type == expected[status]


async def test_a_stream_that_goes_silent_times_out_and_hangs_up(
    fake: FakeUpstream, make: Make
) -> None:
    fake.script.stall_after_chunks = 1
    received: list[dict[str, Any]] = []
    with pytest.raises(UpstreamTimeout):
        async for chunk in make(fake.url, read_timeout=0.3).stream(request(stream=True)):
            received.append(chunk)
    assert [c["choices"][0]["delta"].get("content") for c in received] == ["", "Hello from"]
    # The upstream saw us leave, so it stops generating (and billing).
    await asyncio.wait_for(fake.disconnected.wait(), 5)


async def test_abandoning_a_stream_hangs_up_on_the_upstream(fake: FakeUpstream, make: Make) -> None:
    # What the proxy does when its own client disconnects mid-answer.
    fake.script.stall_after_chunks = 1
    stream = make(fake.url).stream(request(stream=True))
    assert (await anext(stream))["choices"][0]["delta"]["role"] == "assistant"
    await stream.aclose()
    await asyncio.wait_for(fake.disconnected.wait(), 5)


def dropping_routes(fake: FakeUpstream) -> list[web.RouteDef]:
    """An upstream whose connection dies after the first chunk."""

    async def chat(request: web.Request) -> web.StreamResponse:
        await fake.record(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        choice = {"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}
        await response.write(b"data: " + orjson.dumps({**chunk, "choices": [choice]}) + b"\n\n")
        assert request.transport is not None
        request.transport.close()
        return response

    return [web.post("/v1/chat/completions", chat)]


async def test_a_stream_cut_off_mid_way_is_unavailable(make: Make) -> None:
    async with serve(dropping_routes, sdk_path="/v1") as fake:
        received: list[dict[str, Any]] = []
        with pytest.raises(UpstreamUnavailable):
            async for chunk in make(fake.url).stream(request(stream=True)):
                received.append(chunk)
    assert [c["choices"][0]["delta"]["content"] for c in received] == ["Hel"]


def test_sloppy_compat_answers_are_completed_to_the_schema() -> None:
    # What some OpenAI-compatible servers send: no object, created, logprobs or refusal.
    raw = b'{"id":"x","model":"llama3","choices":[{"message":{"content":"hi"}}]}'
    out = openai.completion(raw, model="llama3")
    assert_valid("CreateChatCompletionResponse", out)
    assert out["choices"][0]["message"] == {"content": "hi", "role": "assistant", "refusal": None}
    assert out["choices"][0]["finish_reason"] == "stop"

    header = {"id": "chatcmpl-1", "created": 1, "model": "llama3"}
    chunk = openai.chunk('{"choices":[{"delta":{"content":"hi"}}]}', header)
    assert_valid("CreateChatCompletionStreamResponse", chunk)
    assert chunk["id"] == "chatcmpl-1"


@pytest.mark.parametrize("raw", [b"[]", b'{"choices": []}', b'{"choices": [{"text": "hi"}]}'])
def test_answers_without_a_message_are_malformed(raw: bytes) -> None:
    with pytest.raises(UpstreamMalformed):
        openai.completion(raw, model="m")
