"""The official openai SDK through bytespike, to each provider, with the exact debit."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from bytespike.context import Context
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost
from tests.openai_schema import assert_valid

MODELS = ["gpt-5-4", "claude-sonnet-4-6", "gemini-3-1-pro"]


def sdk(base_url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
async def test_a_chat_call_is_answered_and_debited_exactly(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    for fake in fakes.all():
        fake.script.input_tokens, fake.script.output_tokens = 1234, 567
    async with sdk(base_url, key) as client:
        reply = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
        )
    assert reply.choices[0].message.content == "Hello from the fake upstream."
    assert reply.model == model
    assert reply.usage is not None and reply.usage.prompt_tokens == 1234
    assert_valid("CreateChatCompletionResponse", reply.model_dump(exclude_unset=True))
    balances = await books_balance(ctx, wallet)
    assert balances.spent == expected_cost(ctx, model, 1234, 567)
    assert balances.available == 10_000_000 - expected_cost(ctx, model, 1234, 567)
    assert balances.held == 0


@pytest.mark.parametrize("model", MODELS)
async def test_a_streamed_call_is_debited_exactly(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    for fake in fakes.all():
        fake.script.input_tokens, fake.script.output_tokens = 321, 45
    async with sdk(base_url, key) as client:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            assert_valid("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
            for choice in chunk.choices:
                text += choice.delta.content or ""
            usage = chunk.usage or usage
    assert text == "Hello from the fake upstream."
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (321, 45)
    balances = await books_balance(ctx, wallet)
    assert balances.spent == expected_cost(ctx, model, 321, 45)
    assert balances.held == 0


async def test_the_account_endpoint_shows_the_debit_at_once(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    import httpx

    key, _ = account
    # 200,000 prompt tokens: below GPT-5.4's long-context tier, $0.50.
    fakes.openai.script.input_tokens, fakes.openai.script.output_tokens = 200_000, 0
    async with sdk(base_url, key) as client:
        await client.chat.completions.create(
            model="gpt-5-4", messages=[{"role": "user", "content": "Hi"}]
        )
    async with httpx.AsyncClient(base_url=base_url) as http:
        account_view = (
            await http.get("/api/v1/me/account", headers={"Authorization": f"Bearer {key}"})
        ).json()
    balance = account_view["balance"]
    assert Decimal(str(balance["available_usd"])) == Decimal("9.5")
    assert Decimal(str(balance["lifetime_spent_usd"])) == Decimal("0.5")
    gpt = next(m for m in account_view["allowed_models"] if m["id"] == "gpt-5-4")
    assert gpt["quota_used_usd"] == 0.5
