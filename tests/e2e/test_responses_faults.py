"""/v1/responses when the upstream fails or the client leaves: OpenAI's error envelope with
the right status, the hold released, nothing billed that the upstream did not report,
nothing stored; a client that leaves mid-stream stops the upstream and pays for what it
was sent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.responses.tables import stored_responses
from bytespike.usage.tables import usage_records
from tests.e2e.gateway_support import Upstreams, books_balance
from tests.fakes.base import FakeUpstream
from tests.openai_schema import assert_valid

TEN_DOLLARS = 10_000_000
MODELS = ["gpt-5-4", "claude-sonnet-4-6", "gemini-3-1-pro"]  # native, then translated


def fake_of(fakes: Upstreams, model: str) -> FakeUpstream:
    return {"gpt-5-4": fakes.openai, "claude-sonnet-4-6": fakes.anthropic}.get(model, fakes.gemini)


async def post(base_url: str, key: str, payload: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return await http.post("/v1/responses", json=payload, headers={"x-api-key": key})


async def stored_count(ctx: Context) -> int:
    async with ctx.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(stored_responses)
        return int((await conn.execute(query)).scalar_one())


async def assert_untouched(ctx: Context, wallet: int) -> None:
    balances = await books_balance(ctx, wallet)
    assert (balances.available, balances.held, balances.spent) == (TEN_DOLLARS, 0, 0)
    assert await stored_count(ctx) == 0


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("upstream_status", "status"), [(400, 400), (500, 502)])
async def test_an_upstream_refusal_keeps_its_status_and_costs_nothing(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    model: str,
    stream: bool,
    upstream_status: int,
    status: int,
) -> None:
    key, wallet = account
    script = fake_of(fakes, model).script
    script.status, script.error_message = upstream_status, "prompt is too long"
    answer = await post(base_url, key, {"model": model, "input": "Hi", "stream": stream})
    assert answer.status_code == status, answer.text
    assert_valid("ErrorResponse", answer.json())
    if status == 400:
        assert answer.json()["error"]["message"] == "prompt is too long"
    await assert_untouched(ctx, wallet)


@pytest.mark.parametrize("model", MODELS)
async def test_a_malformed_answer_is_a_502_and_costs_nothing(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    fake_of(fakes, model).script.malformed = True
    answer = await post(base_url, key, {"model": model, "input": "Hi"})
    assert answer.status_code == 502, answer.text
    await assert_untouched(ctx, wallet)


async def wait_until_settled(ctx: Context, wallet: int) -> Any:
    for _ in range(250):
        balances = await books_balance(ctx, wallet)
        if balances.held == 0:
            return balances
        await asyncio.sleep(0.02)
    raise AssertionError(f"the hold was never settled: {balances}")


@pytest.mark.parametrize("model", MODELS)
async def test_a_client_leaving_mid_stream_pays_for_what_it_got_and_nothing_is_stored(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    fake = fake_of(fakes, model)
    fake.script.text = "One two three four five six seven eight nine ten eleven twelve."
    fake.script.chunks, fake.script.stall_after_chunks = 6, 2
    first, second = fake.split()[:2]
    received = b""
    payload = {"model": model, "input": "Hi", "stream": True}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        headers = {"x-api-key": key}
        async with http.stream("POST", "/v1/responses", json=payload, headers=headers) as answer:
            assert answer.status_code == 200
            async for piece in answer.aiter_bytes():
                received += piece
                if first.encode() in received and second.encode() in received:
                    break  # two deltas arrived: hang up
    await asyncio.wait_for(fake.disconnected.wait(), timeout=5)
    balances = await wait_until_settled(ctx, wallet)
    assert balances.spent > 0 and balances.available == TEN_DOLLARS - balances.spent
    async with ctx.db.read() as conn:
        u = usage_records.c
        [row] = (await conn.execute(sa.select(u.status, u.cost_micros, u.output_tokens))).all()
    assert (row.status, row.cost_micros) == ("client_closed", balances.spent)
    assert row.output_tokens > 0
    assert await stored_count(ctx) == 0


@pytest.mark.parametrize("model", ["gpt-5-4", "claude-sonnet-4-6"])
async def test_a_stream_without_usage_is_billed_an_estimate(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    fake_of(fakes, model).script.omit_usage = True
    answer = await post(base_url, key, {"model": model, "input": "Hi", "stream": True})
    assert answer.status_code == 200
    assert "response.completed" in answer.text
    balances = await books_balance(ctx, wallet)
    assert balances.held == 0 and balances.spent > 0
