"""GET /api/v1/me/usage after real calls (totals agree with the ledger, newest first, pages
visit every call once, date filters, who sees what in an org) and GET /v1/models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from bytespike.context import Context
from tests.conftest import FakeClock
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.openai_schema import assert_valid

HI = [{"role": "user", "content": "Hi"}]
RECORD_FIELDS = {
    "id", "key_id", "model", "provider", "input_tokens", "output_tokens", "cached_tokens",
    "cost_usd", "status", "http_status", "stream", "latency_ms", "created_at", "request_id",
}  # fmt: skip


def micros_of(usd: Any) -> int:
    return int(Decimal(str(usd)) * 1_000_000)


async def chat(base_url: str, key: str, model: str, **extra: Any) -> None:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(model=model, messages=HI, **extra)  # type: ignore[call-overload]
        if extra.get("stream"):
            async for _ in stream:
                pass


async def usage(base_url: str, key: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url) as http:
        return await http.get(
            "/api/v1/me/usage", params=params, headers={"Authorization": f"Bearer {key}"}
        )


async def two_days_of_calls(
    ctx: Context, clock: FakeClock, fakes: Upstreams, base_url: str, key: str
) -> None:
    """Day 1 (2026-03-10): gpt-5-4, claude, a failed gpt-5-4. Day 2: gemini streamed, mock."""
    fakes.openai.script.input_tokens, fakes.openai.script.output_tokens = 1000, 200
    fakes.anthropic.script.input_tokens, fakes.anthropic.script.output_tokens = 500, 100
    fakes.gemini.script.input_tokens, fakes.gemini.script.output_tokens = 300, 50
    await chat(base_url, key, "gpt-5-4")
    await chat(base_url, key, "claude-sonnet-4-6")
    fakes.openai.script.status = 500
    with pytest.raises(openai.APIStatusError):
        await chat(base_url, key, "gpt-5-4")
    clock.advance(days=1)
    await chat(base_url, key, "gemini-3-1-pro", stream=True)
    await chat(base_url, key, "mock")


@pytest.fixture
async def ada(ctx: Context, clock: FakeClock, fakes: Upstreams, base_url: str) -> str:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key: str = (await make_key(ctx, "ada"))["key"]
    await two_days_of_calls(ctx, clock, fakes, base_url, key)
    return key


async def test_usage_totals_match_the_ledger_and_records_come_newest_first(
    ctx: Context, base_url: str, ada: str
) -> None:
    report = (await usage(base_url, ada)).json()
    assert report["object"] == "usage" and report["has_more"] is False
    spent = (await books_balance(ctx, await wallet_of(ctx, user="ada"))).spent
    assert sum(micros_of(day["cost_usd"]) for day in report["by_day"]) == spent
    days = {(d["date"], d["model"]): d for d in report["by_day"]}
    assert set(days) == {
        ("2026-03-10", "gpt-5-4"),
        ("2026-03-10", "claude-sonnet-4-6"),
        ("2026-03-11", "gemini-3-1-pro"),
        ("2026-03-11", "mock"),
    }
    gpt = days[("2026-03-10", "gpt-5-4")]
    assert (gpt["requests"], gpt["input_tokens"], gpt["output_tokens"]) == (2, 1000, 200)
    assert micros_of(gpt["cost_usd"]) == expected_cost(ctx, "gpt-5-4", 1000, 200)
    gemini = days[("2026-03-11", "gemini-3-1-pro")]
    assert micros_of(gemini["cost_usd"]) == expected_cost(ctx, "gemini-3-1-pro", 300, 50)

    records = report["data"]
    assert all(set(r) == RECORD_FIELDS for r in records)
    assert [r["model"] for r in records] == [
        "mock", "gemini-3-1-pro", "gpt-5-4", "claude-sonnet-4-6", "gpt-5-4",
    ]  # fmt: skip
    assert [int(r["id"]) for r in records] == sorted((int(r["id"]) for r in records), reverse=True)
    failed = records[2]
    assert (failed["status"], failed["http_status"], failed["cost_usd"]) == (
        "upstream_error",
        502,
        0,
    )
    assert [r["stream"] for r in records] == [False, True, False, False, False]
    assert records[0]["created_at"].startswith("2026-03-11") and records[0]["provider"] == "mock"
    assert records[-1]["provider"] == "openai" and records[-1]["status"] == "ok"


async def test_pages_of_two_visit_every_call_exactly_once(base_url: str, ada: str) -> None:
    everything = [r["id"] for r in (await usage(base_url, ada)).json()["data"]]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await usage(base_url, ada, **params)).json()
        assert len(page["data"]) <= 2
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert seen == everything and len(everything) == 5


async def test_since_and_until_pick_whole_utc_days(base_url: str, ada: str) -> None:
    second = (await usage(base_url, ada, since="2026-03-11")).json()
    assert {r["model"] for r in second["data"]} == {"gemini-3-1-pro", "mock"}
    assert {d["date"] for d in second["by_day"]} == {"2026-03-11"}
    first = (await usage(base_url, ada, until="2026-03-10")).json()
    assert len(first["data"]) == 3 and {d["date"] for d in first["by_day"]} == {"2026-03-10"}
    both = (await usage(base_url, ada, since="2026-03-10", until="2026-03-11")).json()
    assert len(both["data"]) == 5
    assert (await usage(base_url, ada, since="2026-03-12")).json()["data"] == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"since": "10/03/2026"}, {"cursor": "abc"}],
)
async def test_bad_usage_parameters_are_400_in_the_error_envelope(
    ctx: Context, base_url: str, params: dict[str, Any]
) -> None:
    await make_user(ctx, "ada")
    key = (await make_key(ctx, "ada"))["key"]
    answer = await usage(base_url, key, **params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


async def test_an_org_member_sees_only_their_own_calls_and_the_owner_sees_all(
    ctx: Context, base_url: str
) -> None:
    await make_org(ctx, "Dosia AI")
    for name, role in (("ada", "owner"), ("bob", "member")):
        await make_user(ctx, name, tier="enterprise")
        await add_member(ctx, "Dosia AI", name, role=role)
    await top_up(ctx, "10", org="Dosia AI")
    ada = await make_key(ctx, "ada", org="Dosia AI")
    bob = await make_key(ctx, "bob", org="Dosia AI")
    await chat(base_url, ada["key"], "gpt-5-4")
    await chat(base_url, bob["key"], "claude-sonnet-4-6")
    await chat(base_url, bob["key"], "mock")
    mine = (await usage(base_url, bob["key"])).json()
    assert {r["key_id"] for r in mine["data"]} == {bob["id"]} and len(mine["data"]) == 2
    assert {d["model"] for d in mine["by_day"]} == {"claude-sonnet-4-6", "mock"}
    everyone = (await usage(base_url, ada["key"])).json()
    assert [r["key_id"] for r in everyone["data"]] == [bob["id"], bob["id"], ada["id"]]
    spent = (await books_balance(ctx, await wallet_of(ctx, org="Dosia AI"))).spent
    assert sum(micros_of(d["cost_usd"]) for d in everyone["by_day"]) == spent


async def test_the_model_list_shows_only_the_keys_models_with_catalog_prices(
    ctx: Context, base_url: str
) -> None:
    await make_user(ctx, "ada")
    roster = await make_key(ctx, "ada", models=[("mock", 1_000), ("gpt-5-4", None)])
    everything = await make_key(ctx, "ada")
    headers = {"Authorization": f"Bearer {roster['key']}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        listing = (await http.get("/v1/models")).json()
        one = await http.get("/v1/models/gpt-5-4")
        off_roster = await http.get("/v1/models/claude-sonnet-4-6")
        unknown = await http.get("/v1/models/gpt-9")
    assert_valid("ListModelsResponse", listing)
    assert [m["id"] for m in listing["data"]] == ["gpt-5-4", "mock"]
    for model in listing["data"]:
        entry = ctx.catalog.get(model["id"])
        assert entry is not None
        pricing = model["pricing"]
        period = entry.prices.at(ctx.clock.now())
        for name in ("input", "cache_read", "cache_write", "cache_write_1h", "output"):
            assert Decimal(str(pricing[f"{name}_usd_per_mtok"])) == period.base.of(name)
        tiers = [(t["above_prompt_tokens"], t["input_usd_per_mtok"]) for t in pricing["tiers"]]
        assert tiers == [(t.above, float(t.rates.input)) for t in period.tiers[1:]]
    gpt = listing["data"][0]["pricing"]
    assert (gpt["web_search_usd_per_call"], gpt["tiers"][0]["above_prompt_tokens"]) == (
        0.01,
        272000,
    )
    assert one.status_code == 200 and one.json() == listing["data"][0]
    assert_valid("Model", one.json())
    for missing in (off_roster, unknown):
        assert missing.status_code == 404
        assert_valid("ErrorResponse", missing.json())
    async with openai.AsyncOpenAI(
        base_url=f"{base_url}/v1", api_key=everything["key"], max_retries=0
    ) as sdk:
        assert {m.id async for m in sdk.models.list()} == set(ctx.catalog.ids)
        assert (await sdk.models.retrieve("claude-sonnet-4-6")).owned_by == "anthropic"
