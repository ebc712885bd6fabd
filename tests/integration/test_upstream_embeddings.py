"""The Embeddings capability against the fake OpenAI and Gemini servers over real HTTP
(OpenAI's /v1/embeddings, Gemini's batchEmbedContents), and the native Gemini calls
(generate, generate_stream, call): answers, usage, and how each fails."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bytespike.upstream.base import (
    Endpoint,
    Prepared,
    UpstreamError,
    UpstreamMalformed,
    UpstreamTimeout,
    Usage,
)
from bytespike.upstream.client import Client
from bytespike.upstream.embeddings import Embeddings
from bytespike.upstream.gemini import GeminiProvider, NativeGemini
from bytespike.upstream.openai import OpenAIProvider
from tests.fakes import gemini as fake_gemini
from tests.fakes import openai as fake_openai
from tests.fakes.base import FakeUpstream
from tests.fakes.openai import vector


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = Client(100)
    yield client
    await client.close()


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeUpstream]:
    async with fake_openai.running() as fake:
        yield fake


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeUpstream]:
    async with fake_gemini.running() as fake:
        yield fake


def endpoint(url: str) -> Endpoint:
    return Endpoint(base_url=url, api_key="k-test", read_timeout=5.0)


@pytest.fixture
def openai(openai_fake: FakeUpstream, client: Client) -> OpenAIProvider:
    return OpenAIProvider(name="openai", endpoint=endpoint(openai_fake.url), client=client)


@pytest.fixture
def gemini(gemini_fake: FakeUpstream, client: Client) -> GeminiProvider:
    return GeminiProvider(name="gemini", endpoint=endpoint(gemini_fake.url), client=client)


async def test_both_providers_have_the_capabilities_they_claim(
    openai: OpenAIProvider, gemini: GeminiProvider
) -> None:
    assert isinstance(openai, Embeddings) and isinstance(gemini, Embeddings)
    assert isinstance(gemini, NativeGemini) and not isinstance(openai, NativeGemini)


@pytest.mark.parametrize("encoding", ["float", "base64"])
async def test_openai_embeddings_pass_as_sent(
    openai_fake: FakeUpstream, openai: OpenAIProvider, encoding: str
) -> None:
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": encoding}
    answer = await openai.embed(openai.prepare_embeddings(body))
    assert openai_fake.requests == [body]
    assert openai_fake.headers[0]["Authorization"] == "Bearer k-test"
    assert [d["index"] for d in answer["data"]] == [0, 1]
    first = answer["data"][0]["embedding"]
    assert isinstance(first, str) if encoding == "base64" else first == vector("a", 8)
    assert answer["usage"] == {"prompt_tokens": 12, "total_tokens": 12}


async def test_openai_embedding_failures(openai_fake: FakeUpstream, openai: OpenAIProvider) -> None:
    body = {"model": "m", "input": "a"}
    openai_fake.script.status = 400
    with pytest.raises(UpstreamError) as refused:
        await openai.embed(openai.prepare_embeddings(body))
    assert (refused.value.status, refused.value.message) == (400, "upstream says no")
    openai_fake.script.status, openai_fake.script.malformed = 200, True
    with pytest.raises(UpstreamMalformed):
        await openai.embed(openai.prepare_embeddings(body))


async def test_gemini_embeds_through_batch_embed_contents(
    gemini_fake: FakeUpstream, gemini: GeminiProvider
) -> None:
    body = {"model": "gemini-embedding-001", "input": ["a", "b"], "dimensions": 4}
    answer = await gemini.embed(gemini.prepare_embeddings(body))
    assert gemini_fake.paths == ["/v1beta/models/gemini-embedding-001:batchEmbedContents"]
    assert [d["embedding"] for d in answer["data"]] == [vector("a", 4), vector("b", 4)]
    assert answer["usage"] == {"prompt_tokens": 12, "total_tokens": 12}
    gemini_fake.script.omit_usage = True
    assert "usage" not in await gemini.embed(gemini.prepare_embeddings(body))


async def test_gemini_embedding_failures(gemini_fake: FakeUpstream, gemini: GeminiProvider) -> None:
    request = gemini.prepare_embeddings({"model": "gemini-embedding-001", "input": "a"})
    gemini_fake.script.malformed = True
    with pytest.raises(UpstreamMalformed):
        await gemini.embed(request)
    gemini_fake.script.status = 429
    with pytest.raises(UpstreamError) as limited:
        await gemini.embed(request)
    assert (limited.value.status, limited.value.type) == (429, "rate_limit_error")


async def test_native_gemini_calls_answer_as_gemini_sent(
    gemini_fake: FakeUpstream, gemini: GeminiProvider
) -> None:
    payload = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    request = Prepared("gemini-x", payload, limit_at=("generationConfig", "maxOutputTokens"))
    whole = await gemini.generate(request.limit(50))
    assert whole["candidates"][0]["content"]["parts"] == [{"text": gemini_fake.script.text}]
    assert gemini_fake.requests[0]["generationConfig"] == {"maxOutputTokens": 50}
    events = [event async for event in gemini.generate_stream(request)]
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == (
        gemini_fake.script.text
    )
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    counted = await gemini.call("gemini-x", "countTokens", payload)
    assert counted["totalTokens"] == 12
    gemini_fake.script.status = 400
    with pytest.raises(UpstreamError) as refused:
        await gemini.call("gemini-x", "countTokens", payload)
    assert refused.value.status == 400 and refused.value.usage is None


async def test_a_native_stream_that_breaks_carries_the_usage_so_far(
    gemini_fake: FakeUpstream, client: Client
) -> None:
    provider = GeminiProvider(
        name="gemini",
        endpoint=Endpoint(base_url=gemini_fake.url, api_key=None, read_timeout=0.5),
        client=client,
    )
    gemini_fake.script.stall_after_chunks = 1
    request = Prepared("gemini-x", {"contents": [{"parts": [{"text": "Hi"}]}]}, limit_at=("x",))
    seen = []
    with pytest.raises(UpstreamTimeout) as broke:
        async for event in provider.generate_stream(request):
            seen.append(event)
    assert len(seen) == 1
    assert broke.value.usage == Usage(input_tokens=12, output_tokens=0)
