"""GeminiProvider against a fake Gemini server over real HTTP: answers, streams, tool
calls, usage, and every way the upstream can fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from bytespike.upstream.base import (
    Endpoint,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    Usage,
    usage_from_openai,
)
from bytespike.upstream.client import Client
from bytespike.upstream.gemini import GeminiProvider
from tests.fakes import gemini as fake_gemini
from tests.fakes.base import FakeUpstream, serve
from tests.openai_schema import assert_valid

Make = Callable[..., GeminiProvider]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = Client(100)
    yield client
    await client.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with fake_gemini.running() as fake:
        yield fake


@pytest.fixture
def make(client: Client) -> Make:
    def make(url: str, *, read_timeout: float = 5.0) -> GeminiProvider:
        endpoint = Endpoint(base_url=url, api_key="g-test", read_timeout=read_timeout)
        return GeminiProvider(name="gemini", endpoint=endpoint, client=client)

    return make


def request(**extra: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    return {"model": "gemini-2.5-flash", "messages": messages, "max_completion_tokens": 50, **extra}


async def collect(provider: GeminiProvider, body: dict[str, Any]) -> list[dict[str, Any]]:
    chunks = [chunk async for chunk in provider.stream(body)]
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    return chunks


async def test_complete_sends_gemini_format_and_answers_openai(
    fake: FakeUpstream, make: Make
) -> None:
    fake.script.cached_tokens = 5
    out = await make(fake.url).complete(request())
    assert_valid("CreateChatCompletionResponse", out)
    assert out["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert out["model"] == "gemini-2.5-flash"
    assert usage_from_openai(out["usage"]) == Usage(12, 7, 5)
    assert fake.paths == ["/v1beta/models/gemini-2.5-flash:generateContent"]
    assert fake.headers[0]["x-goog-api-key"] == "g-test"
    assert fake.requests[0] == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {"maxOutputTokens": 50},
    }


async def test_stream_yields_chunks_then_usage(fake: FakeUpstream, make: Make) -> None:
    chunks = await collect(make(fake.url), request(stream=True))
    assert fake.paths == ["/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from the fake upstream."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    # The totals of the last event, not the running counts of the earlier ones.
    assert usage_from_openai(chunks[-1]["usage"]) == Usage(12, 7, 0)


async def test_stream_without_usage_ends_without_a_usage_chunk(
    fake: FakeUpstream, make: Make
) -> None:
    fake.script.omit_usage = True
    chunks = await collect(make(fake.url), request(stream=True))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in c for c in chunks)


async def test_tool_calls(fake: FakeUpstream, make: Make) -> None:
    fake.script.tool_call = ("get_weather", {"city": "Paris"})
    body = request(tools=[WEATHER], tool_choice="required")
    out = await make(fake.url).complete(body)
    assert_valid("CreateChatCompletionResponse", out)
    assert fake.requests[0]["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
    }
    assert fake.requests[0]["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    (call,) = out["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}

    chunks = await collect(make(fake.url), {**body, "stream": True})
    calls = [
        call
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls", ())
    ]
    assert [(c["index"], c["function"]["name"]) for c in calls] == [(0, "get_weather")]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"

    # The client sends the call and its result back; Gemini gets them paired by name.
    follow_up = request(tools=[WEATHER])
    follow_up["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"},
    ]
    fake.script.tool_call = None
    await make(fake.url).complete(follow_up)
    assert fake.requests[-1]["contents"][1:] == [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": "18C and sunny"},
                    }
                }
            ],
        },
    ]


@pytest.mark.parametrize(
    ("status", "client_status", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (403, 403, "permission_error"),
        (429, 429, "rate_limit_error"),
        (500, 502, "api_error"),
        (503, 502, "api_error"),
    ],
)
async def test_error_statuses_pass_through_with_geminis_message(
    fake: FakeUpstream, make: Make, status: int, client_status: int, kind: str
) -> None:
    fake.script.status = status
    provider = make(fake.url)
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(request())
    assert (caught.value.status, caught.value.type) == (client_status, kind)
    assert caught.value.message == "upstream says no"
    with pytest.raises(UpstreamError) as caught:
        await collect(provider, request(stream=True))
    assert caught.value.status == client_status


async def test_a_request_gemini_cannot_express_is_a_400_without_a_call(
    fake: FakeUpstream, make: Make
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await make(fake.url).complete(request(n=2))
    assert (caught.value.status, caught.value.type) == (400, "invalid_request_error")
    assert "n must be 1" in caught.value.message
    assert fake.requests == []


async def test_a_stream_that_goes_silent_times_out_with_the_usage_so_far(
    fake: FakeUpstream, make: Make
) -> None:
    fake.script.stall_after_chunks = 1
    received: list[dict[str, Any]] = []
    with pytest.raises(UpstreamTimeout) as caught:
        async for chunk in make(fake.url, read_timeout=0.3).stream(request(stream=True)):
            received.append(chunk)
    assert [c["choices"][0]["delta"]["content"] for c in received] == ["Hello from"]
    assert caught.value.usage == Usage(12, 0)  # Gemini had reported the prompt's tokens
    # The upstream saw us leave, so it stops generating (and billing).
    await asyncio.wait_for(fake.disconnected.wait(), 5)


def dropping_routes(fake: FakeUpstream) -> list[web.RouteDef]:
    """A Gemini whose connection dies after the first event."""

    async def generate(request: web.Request) -> web.StreamResponse:
        await fake.record(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        event = fake_gemini.response(fake, "m", [{"text": "Hel"}], final=False)
        await response.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
        assert request.transport is not None
        request.transport.close()
        return response

    return [web.post("/v1beta/models/{target}", generate)]


async def test_a_stream_cut_off_mid_way_is_unavailable(make: Make) -> None:
    async with serve(dropping_routes) as fake:
        received: list[dict[str, Any]] = []
        with pytest.raises(UpstreamUnavailable):
            async for chunk in make(fake.url).stream(request(stream=True)):
                received.append(chunk)
    assert [c["choices"][0]["delta"]["content"] for c in received] == ["Hel"]
