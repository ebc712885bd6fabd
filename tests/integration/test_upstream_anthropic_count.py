"""AnthropicProvider's token count (the CountsMessageTokens capability) against the fake
Anthropic API over real HTTP: the request goes as given, and every failure is named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bytespike.upstream.anthropic import AnthropicProvider
from bytespike.upstream.base import CountsMessageTokens, Endpoint, UpstreamError, UpstreamMalformed
from bytespike.upstream.client import Client
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.base import FakeUpstream

BODY: dict[str, Any] = {
    "model": "claude-fake-1",
    "system": "Be brief.",
    "messages": [{"role": "user", "content": "Say hello."}],
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with fake_anthropic.running() as fake:
        yield fake


@pytest.fixture
async def provider(fake: FakeUpstream) -> AsyncIterator[AnthropicProvider]:
    endpoint = Endpoint(base_url=fake.url, api_key="sk-ant-test", read_timeout=5.0)
    client = Client(100)
    yield AnthropicProvider(name="anthropic", endpoint=endpoint, client=client)
    await client.close()


async def test_the_count_is_anthropics_for_the_request_as_given(
    fake: FakeUpstream, provider: AnthropicProvider
) -> None:
    assert isinstance(provider, CountsMessageTokens)
    fake.script.input_tokens = 321
    assert await provider.count_message_tokens(BODY, beta="token-counting-2024-11-01") == 321
    assert fake.paths == ["/v1/messages/count_tokens"] and fake.requests == [BODY]
    headers = fake.headers[0]
    assert headers["x-api-key"] == "sk-ant-test" and headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "token-counting-2024-11-01"


async def test_a_refused_count_is_anthropics_error(
    fake: FakeUpstream, provider: AnthropicProvider
) -> None:
    fake.script.status, fake.script.error_message = 429, "slow down"
    with pytest.raises(UpstreamError) as failed:
        await provider.count_message_tokens(BODY)
    assert (failed.value.status, failed.value.type, failed.value.message) == (
        429,
        "rate_limit_error",
        "slow down",
    )


async def test_a_count_that_is_not_a_count_is_malformed(
    fake: FakeUpstream, provider: AnthropicProvider
) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamMalformed):
        await provider.count_message_tokens(BODY)
