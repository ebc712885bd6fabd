"""Hundreds of simultaneous calls through a real gateway never overdraw a wallet nor pass a
cap, on SQLite and PostgreSQL, and the books still balance."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from bytespike.context import Context
from bytespike.money import parse_usd
from tests.e2e.gateway_support import Upstreams, books_balance, gateway, upstreams
from tests.factories import make_key, make_user, top_up, wallet_of

# gpt-5-4: $2.50 in / $15 out per million tokens. 20 in + 100 out = 1,550 micros a call;
# the hold for max_tokens=100 is a little more (the input bound is above 20 tokens).
COST = 20 * 2.5 + 100 * 15


@pytest.fixture
async def fakes() -> AsyncIterator[Upstreams]:
    async with upstreams() as running:
        running.openai.script.input_tokens = 20
        running.openai.script.output_tokens = 100
        running.openai.script.delay = 0.05  # calls overlap while their holds are open
        yield running


async def storm(base_url: str, key: str, calls: int) -> Counter[str]:
    body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 100}
    limits = httpx.Limits(max_connections=calls)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:

        async def one() -> str:
            response = await http.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            if response.status_code == 200:
                return "ok"
            return f"{response.status_code} {response.json()['error'].get('code')}"

        return Counter(await asyncio.gather(*(one() for _ in range(calls))))


async def test_300_simultaneous_calls_on_a_wallet_for_about_50(
    ctx: Context, fakes: Upstreams
) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "0.08", user="ada")  # about 50 holds' worth
    key = await make_key(ctx, "ada", rate_limit=10_000)
    wallet = await wallet_of(ctx, user="ada")
    async with gateway(ctx, fakes) as base_url:
        outcomes = await storm(base_url, key["key"], 300)
    assert set(outcomes) <= {"ok", "402 insufficient_balance"}, outcomes
    assert 40 <= outcomes["ok"] <= 52, outcomes
    balances = await books_balance(ctx, wallet)  # also checks ledger.verify
    assert balances.held == 0
    assert balances.available >= 0
    assert balances.spent == outcomes["ok"] * COST <= parse_usd("0.08")
    assert balances.available + balances.spent == parse_usd("0.08")


async def test_simultaneous_calls_never_pass_a_per_model_cap(
    ctx: Context, fakes: Upstreams
) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    cap = parse_usd("0.02")  # about 12 calls
    key = await make_key(ctx, "ada", models=[("gpt-5-4", cap)], rate_limit=10_000)
    wallet = await wallet_of(ctx, user="ada")
    async with gateway(ctx, fakes) as base_url:
        outcomes = await storm(base_url, key["key"], 100)
    assert set(outcomes) <= {"ok", "402 quota_cap_reached"}, outcomes
    assert outcomes["ok"] >= 10, outcomes
    balances = await books_balance(ctx, wallet)
    assert balances.spent == outcomes["ok"] * COST <= cap
    assert balances.held == 0
