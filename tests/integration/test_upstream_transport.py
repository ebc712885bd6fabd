"""Every provider names transport failures alike (upstream/transport.py), for a plain call
and a stream: a silence past the read timeout is UpstreamTimeout, a refused connection
UpstreamUnavailable, a 2xx body not in the provider's format UpstreamMalformed. Each runs
against its own fake, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from bytespike.upstream.anthropic import AnthropicProvider
from bytespike.upstream.base import (
    Endpoint,
    Provider,
    UpstreamMalformed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from bytespike.upstream.client import Client
from bytespike.upstream.gemini import GeminiProvider
from bytespike.upstream.openai import OpenAIProvider
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes import openai as fake_openai
from tests.fakes.base import FakeUpstream
from tests.processes import free_port

Fake = Callable[[], AbstractAsyncContextManager[FakeUpstream]]

# provider class, its fake, the path its base URL ends in (OPENAI_BASE_URL ends in /v1)
PROVIDERS: dict[str, tuple[type[Any], Fake, str]] = {
    "openai": (OpenAIProvider, fake_openai.running, "/v1"),
    "anthropic": (AnthropicProvider, fake_anthropic.running, ""),
    "gemini": (GeminiProvider, fake_gemini.running, ""),
}


@pytest.fixture(params=list(PROVIDERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def fake(kind: str) -> AsyncIterator[FakeUpstream]:
    async with PROVIDERS[kind][1]() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = Client(100)
    yield client
    await client.close()


@pytest.fixture
def make(kind: str, client: Client) -> Callable[..., Provider]:
    def make(url: str, *, read_timeout: float = 5.0) -> Provider:
        endpoint = Endpoint(base_url=url, api_key="test-key", read_timeout=read_timeout)
        provider: Provider = PROVIDERS[kind][0](name=kind, endpoint=endpoint, client=client)
        return provider

    return make


def request(**extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "Say hello"}]
    return {"model": "test-model", "messages": messages, "max_completion_tokens": 50, **extra}


async def drain(provider: Provider) -> None:
    async for _chunk in provider.stream(request(stream=True)):
        pass


async def test_a_slow_upstream_times_out(fake: FakeUpstream, make: Callable[..., Provider]) -> None:
    fake.script.delay = 1.0
    with pytest.raises(UpstreamTimeout):
        await make(fake.url, read_timeout=0.2).complete(request())
    with pytest.raises(UpstreamTimeout):
        await drain(make(fake.url, read_timeout=0.2))


async def test_a_refused_connection_is_unavailable(
    kind: str, make: Callable[..., Provider]
) -> None:
    port = free_port()  # free a moment ago, so nobody listens on it
    provider = make(f"http://127.0.0.1:{port}{PROVIDERS[kind][2]}")
    with pytest.raises(UpstreamUnavailable):
        await provider.complete(request())
    with pytest.raises(UpstreamUnavailable):
        await drain(provider)


async def test_a_malformed_answer_is_malformed(
    fake: FakeUpstream, make: Callable[..., Provider]
) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamMalformed):
        await make(fake.url).complete(request())
    with pytest.raises(UpstreamMalformed):
        await drain(make(fake.url))
