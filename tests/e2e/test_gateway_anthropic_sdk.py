"""The official anthropic SDK through bytespike, to each provider and the mock, with the
exact debit: plain and streamed messages, system prompts, tools, both ways to authenticate."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import httpx
import pytest

from bytespike.context import Context
from tests.e2e.gateway_support import (
    Upstreams,
    books_balance,
    expected_cost,
    upstreams,
)
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes.base import FakeUpstream

UPSTREAM_MODELS = ["claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro"]
ALL_MODELS = [*UPSTREAM_MODELS, "mock"]
TEXT = "Hello from the fake upstream."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
async def fakes() -> AsyncIterator[Upstreams]:
    async with upstreams() as running:
        for fake in running.all():
            fake.script.input_tokens, fake.script.output_tokens = 1234, 567
        yield running


def sdk(base_url: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key=key, max_retries=0)


def upstream_of(fakes: Upstreams, model: str) -> FakeUpstream:
    return {"claude-sonnet-4-6": fakes.anthropic, "gpt-5-4": fakes.openai}.get(model, fakes.gemini)


async def assert_debited(
    ctx: Context, wallet: int, model: str, usage: anthropic.types.Usage
) -> None:
    """The wallet paid exactly the usage the client was shown, nothing held back."""
    billed_input = usage.input_tokens + (usage.cache_read_input_tokens or 0)
    cost = expected_cost(ctx, model, billed_input, usage.output_tokens)
    balances = await books_balance(ctx, wallet)
    assert (balances.spent, balances.held) == (cost, 0)
    assert balances.available == 10_000_000 - cost


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
async def test_a_message_with_a_system_prompt_is_answered_and_debited_exactly(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    async with sdk(base_url, key) as client:
        reply = await client.messages.create(
            model=model,
            max_tokens=1000,
            system="Answer like a pirate.",
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert [block.type for block in reply.content] == ["text"]
    assert reply.content[0].text == TEXT  # type: ignore[union-attr]
    assert reply.model == model and reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (1234, 567)
    fake = upstream_of(fakes, model)
    sent = json.dumps(fake.requests[-1])
    assert "Answer like a pirate." in sent  # the system prompt reached the model
    assert key not in json.dumps(fake.headers[-1])
    await assert_debited(ctx, wallet, model, reply.usage)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_clients_beta_features_reach_anthropic(
    fakes: Upstreams, base_url: str, account: tuple[str, int], stream: bool
) -> None:
    key, _wallet = account
    betas = ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]
    async with sdk(base_url, key) as client:
        request = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hi"}],
            "betas": betas,
        }
        if stream:
            async with client.beta.messages.stream(**request) as events:  # type: ignore[arg-type]
                await events.get_final_message()
        else:
            await client.beta.messages.create(**request)  # type: ignore[arg-type]
    assert fakes.anthropic.headers[-1]["anthropic-beta"] == ",".join(betas)
    assert fakes.anthropic.headers[-1]["anthropic-version"] == "2023-06-01"


async def test_the_mock_model_answers_and_bills_its_own_usage(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    async with sdk(base_url, key) as client:
        reply = await client.messages.create(
            model="mock",
            max_tokens=200,
            system="Be brief.",
            messages=[{"role": "user", "content": "ping"}],
        )
    assert reply.content[0].text == "[mock] You said: ping"  # type: ignore[union-attr]
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    await assert_debited(ctx, wallet, "mock", reply.usage)


@pytest.mark.parametrize("model", ALL_MODELS)
async def test_a_streamed_message_is_debited_exactly(
    ctx: Context, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    async with (
        sdk(base_url, key) as client,
        client.messages.stream(
            model=model,
            max_tokens=1000,
            system="Be brief.",
            messages=[{"role": "user", "content": "ping"}],
        ) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    expected = "[mock] You said: ping" if model == "mock" else TEXT
    assert text == expected and final.content[0].text == expected  # type: ignore[union-attr]
    assert final.model == model and final.stop_reason == "end_turn"
    if model != "mock":
        assert (final.usage.input_tokens, final.usage.output_tokens) == (1234, 567)
    await assert_debited(ctx, wallet, model, final.usage)


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
async def test_raw_stream_events_arrive_in_anthropic_order(
    ctx: Context, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    async with sdk(base_url, key) as client:
        stream = await client.messages.create(
            model=model,
            max_tokens=1000,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
        )
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    assert text == TEXT
    assert events[0].message.model == model  # type: ignore[union-attr]
    assert events[-2].usage.output_tokens == 567  # type: ignore[union-attr]
    balances = await books_balance(ctx, wallet)
    assert (balances.spent, balances.held) == (expected_cost(ctx, model, 1234, 567), 0)


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
async def test_a_tool_call_comes_back_as_a_tool_use_block(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    model: str,
    streamed: bool,
) -> None:
    key, wallet = account
    for fake in fakes.all():
        fake.script.tool_call = ("get_weather", {"city": "Paris", "unit": "celsius"})
    request = {
        "model": model,
        "max_tokens": 1000,
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    async with sdk(base_url, key) as client:
        if streamed:
            async with client.messages.stream(**request) as stream:  # type: ignore[arg-type]
                reply = await stream.get_final_message()
        else:
            reply = await client.messages.create(**request)  # type: ignore[arg-type]
    [block] = reply.content
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "Paris", "unit": "celsius"} and block.id
    assert reply.stop_reason == "tool_use"
    sent = json.dumps(upstream_of(fakes, model).requests[-1])
    assert "get_weather" in sent and "Current weather in a city" in sent
    await assert_debited(ctx, wallet, model, reply.usage)


async def test_auth_token_sends_a_bearer_key_that_works_and_a_wrong_one_does_not(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    request = {
        "model": "gpt-5-4",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    async with anthropic.AsyncAnthropic(base_url=base_url, auth_token=key, max_retries=0) as client:
        reply = await client.messages.create(**request)  # type: ignore[arg-type]
    assert reply.content[0].text == TEXT  # type: ignore[union-attr]
    await assert_debited(ctx, wallet, "gpt-5-4", reply.usage)
    wrong = "bsk-" + "x" * 40
    async with anthropic.AsyncAnthropic(base_url=base_url, auth_token=wrong, max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await bad.messages.create(**request)  # type: ignore[arg-type]
    assert refused.value.status_code == 401
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("model", "field"),
    [("claude-sonnet-4-6", "max_tokens"), ("gpt-5-4", "max_completion_tokens")],
)
async def test_without_max_tokens_the_gateway_sends_what_the_wallet_can_afford(
    ctx: Context, fakes: Upstreams, base_url: str, model: str, field: str
) -> None:
    await make_user(ctx, "bob")
    await top_up(ctx, "0.01", user="bob")  # 10,000 micros: a few hundred output tokens
    key = (await make_key(ctx, "bob"))["key"]
    for fake in fakes.all():
        fake.script.input_tokens, fake.script.output_tokens = 10, 5
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post("/v1/messages", json=body, headers={"x-api-key": key})
    assert answer.status_code == 200, answer.text
    sent = upstream_of(fakes, model).requests[-1][field]
    entry = ctx.catalog.get(model)
    assert entry is not None
    assert 0 < sent < entry.max_output_tokens  # limited by money, not by the model
    assert sent * entry.prices.periods[0].base.output <= 10_000  # the wallet pays for all of it
    balances = await books_balance(ctx, await wallet_of(ctx, user="bob"))
    assert (balances.spent, balances.held) == (expected_cost(ctx, model, 10, 5), 0)


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
async def test_cached_prompt_tokens_are_shown_apart_and_billed_at_the_cache_price(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    for fake in fakes.all():
        fake.script.cached_tokens = 1000  # of the 1234 prompt tokens
    async with sdk(base_url, key) as client:
        reply = await client.messages.create(
            model=model, max_tokens=1000, messages=[{"role": "user", "content": "Hi"}]
        )
    assert (reply.usage.input_tokens, reply.usage.cache_read_input_tokens) == (234, 1000)
    balances = await books_balance(ctx, wallet)
    cost = expected_cost(ctx, model, 1234, 567, cached=1000)
    assert (balances.spent, balances.held) == (cost, 0)
