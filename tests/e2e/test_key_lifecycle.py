"""A key's lifecycle as its holder sees it through a running gateway: a change made by the
operator (settings, roll, expiry, budget, suspension) applies from the next request on, even
though the gateway caches keys; a budget is never passed, however many calls race for it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.money import parse_usd
from bytespike.orgs import service as orgs
from bytespike.usage.tables import refusals_daily
from tests.conftest import FakeClock
from tests.e2e.gateway_support import Upstreams, books_balance, gateway, upstreams
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.operator_support import cli

# gpt-5-4: $2.50 in / $15 out per million tokens; the fake answers 20 in + 100 out.
COST = 20 * 2.5 + 100 * 15
BODY = {"model": "gpt-5-4", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 100}


@pytest.fixture
async def fakes() -> AsyncIterator[Upstreams]:
    async with upstreams() as running:
        running.openai.script.input_tokens = 20
        running.openai.script.output_tokens = 100
        yield running


@pytest.fixture
async def served(ctx: Context, fakes: Upstreams) -> AsyncIterator[httpx.AsyncClient]:
    """A running gateway (with its key cache) and a client for it; Ada has $10."""
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    async with (
        gateway(ctx, fakes) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield http


async def call(http: httpx.AsyncClient, secret: str, body: dict[str, Any] = BODY) -> httpx.Response:
    return await http.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
    )


def error(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json()["error"].get("code")


async def test_a_raised_rate_limit_applies_at_the_next_request(
    ctx: Context, served: httpx.AsyncClient
) -> None:
    key = await make_key(ctx, "ada", rate_limit=1)
    assert (await call(served, key["key"])).status_code == 200  # cached from now on
    assert (await call(served, key["key"])).status_code == 429
    assert await refused(ctx, key["id"]) == {"rate_limited": 1}
    await keys.update(ctx, key["id"], keys.KeyChanges(rate_limit=100))
    response = await call(served, key["key"])
    assert response.status_code == 200, response.text
    assert response.headers["x-ratelimit-limit-requests"] == "100"


async def test_a_model_removed_from_the_roster_is_refused_at_the_next_request(
    ctx: Context, served: httpx.AsyncClient
) -> None:
    key = await make_key(ctx, "ada", models=[("gpt-5-4", None), ("mock", None)])
    assert (await call(served, key["key"])).status_code == 200
    await keys.update(ctx, key["id"], keys.KeyChanges(remove_models=["gpt-5-4"]))
    assert error(await call(served, key["key"])) == (403, "model_not_allowed")


async def test_a_cap_set_on_a_cached_key_bounds_the_next_request(
    ctx: Context, served: httpx.AsyncClient
) -> None:
    key = await make_key(ctx, "ada")
    assert (await call(served, key["key"])).status_code == 200
    await keys.update(ctx, key["id"], keys.KeyChanges(models=[("gpt-5-4", parse_usd("0.001"))]))
    assert error(await call(served, key["key"])) == (402, "quota_cap_reached")


async def test_a_rolled_key_keeps_its_old_secret_for_the_grace_period_only(
    ctx: Context, served: httpx.AsyncClient, clock: FakeClock
) -> None:
    key = await make_key(ctx, "ada")
    assert (await call(served, key["key"])).status_code == 200
    rolled = await keys.roll(ctx, key["id"], grace_seconds=60)
    assert rolled["id"] == key["id"] and rolled["key"] != key["key"]
    assert (await call(served, key["key"])).status_code == 200  # within the grace
    assert (await call(served, rolled["key"])).status_code == 200
    clock.advance(seconds=61)
    response = await call(served, key["key"])
    assert response.status_code == 401
    assert "rolled" in response.json()["error"]["message"]
    assert (await call(served, rolled["key"])).status_code == 200
    shown = await keys.show(ctx, key["id"])  # one key, one history: four calls spent
    assert shown["spent_usd"] == pytest.approx(4 * COST / 1e6)


async def test_a_roll_without_grace_ends_the_old_secret_at_once(
    ctx: Context, served: httpx.AsyncClient
) -> None:
    key = await make_key(ctx, "ada")
    assert (await call(served, key["key"])).status_code == 200
    rolled = await keys.roll(ctx, key["id"])
    assert error(await call(served, key["key"]))[0] == 401
    assert (await call(served, rolled["key"])).status_code == 200


async def test_an_expired_key_gets_401_and_a_cleared_expiry_revives_it(
    ctx: Context, served: httpx.AsyncClient, clock: FakeClock
) -> None:
    key = await make_key(ctx, "ada")
    soon = clock.now().replace(microsecond=0).isoformat()  # "now", as given on the CLI
    await keys.update(ctx, key["id"], keys.KeyChanges(expires_at=soon))
    response = await call(served, key["key"])
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
    account = await served.get("/api/v1/me/account", headers={"x-api-key": key["key"]})
    assert account.status_code == 401
    await keys.update(ctx, key["id"], keys.KeyChanges(expires_at=keys.CLEAR))
    assert (await call(served, key["key"])).status_code == 200


async def test_an_expiry_ahead_lets_calls_through_until_it_passes(
    ctx: Context, served: httpx.AsyncClient, clock: FakeClock
) -> None:
    key = await make_key(ctx, "ada")
    when = clock.now() + timedelta(seconds=60)
    await keys.update(ctx, key["id"], keys.KeyChanges(expires_at=when))
    assert (await call(served, key["key"])).status_code == 200
    clock.advance(seconds=61)
    assert error(await call(served, key["key"]))[0] == 401


async def test_a_suspended_users_keys_get_403_until_unsuspended(
    ctx: Context, served: httpx.AsyncClient
) -> None:
    key = await make_key(ctx, "ada")
    assert (await call(served, key["key"])).status_code == 200
    code, _, err = await asyncio.to_thread(
        cli, ctx.settings.database_url, ["users", "suspend", "ada"]
    )
    assert code == 0, err
    response = await call(served, key["key"])
    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "permission_error"
    me = await served.get("/api/v1/me/key", headers={"x-api-key": key["key"]})
    assert me.status_code == 403
    code, _, err = await asyncio.to_thread(
        cli, ctx.settings.database_url, ["users", "unsuspend", "ada"]
    )
    assert code == 0, err
    assert (await call(served, key["key"])).status_code == 200


async def test_a_budget_refuses_with_key_budget_reached_and_the_holder_sees_it(
    ctx: Context, served: httpx.AsyncClient
) -> None:
    key = await make_key(ctx, "ada")
    budget = parse_usd("0.004")  # two calls' worth, a little more
    await keys.update(ctx, key["id"], keys.KeyChanges(budget=budget, budget_reset="monthly"))
    outcomes = [await call(served, key["key"]) for _ in range(4)]
    assert [r.status_code for r in outcomes] == [200, 200, 402, 402]
    body = outcomes[-1].json()["error"]
    assert body["type"] == "billing_error" and body["code"] == "key_budget_reached"
    me = (await served.get("/api/v1/me/key", headers={"x-api-key": key["key"]})).json()
    assert me["budget"]["budget_usd"] == 0.004 and me["budget"]["reset"] == "monthly"
    assert me["budget"]["spent_usd"] == pytest.approx(2 * COST / 1e6)
    assert me["budget"]["held_usd"] == 0
    assert me["spent_usd"] == pytest.approx(2 * COST / 1e6)
    assert me["rate_limit_per_minute"] == key["rate_limit_per_minute"]
    assert "key" not in me and me["prefix"] == key["prefix"]
    assert await refused(ctx, key["id"]) == {"key_budget_reached": 2}


async def refused(ctx: Context, key_id: int) -> dict[str, int]:
    """The key's refused calls by reason, as the reports count them."""
    r = refusals_daily.c
    query = sa.select(r.reason, sa.func.sum(r.count)).where(r.key_id == key_id).group_by(r.reason)
    async with ctx.db.read() as conn:
        return {reason: int(n) for reason, n in await conn.execute(query)}


async def test_300_simultaneous_calls_never_pass_a_key_budget_for_about_50(
    ctx: Context, fakes: Upstreams
) -> None:
    fakes.openai.script.delay = 0.05  # calls overlap while their holds are open
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada", rate_limit=10_000)
    budget = parse_usd("0.08")  # about 50 calls
    await keys.update(ctx, key["id"], keys.KeyChanges(budget=budget))
    wallet = await wallet_of(ctx, user="ada")
    async with gateway(ctx, fakes) as base_url:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
            replies = await asyncio.gather(*(call(http, key["key"]) for _ in range(300)))
    outcomes = Counter("ok" if r.status_code == 200 else str(error(r)) for r in replies)
    assert set(outcomes) <= {"ok", "(402, 'key_budget_reached')"}, outcomes
    assert 40 <= outcomes["ok"] <= 51, outcomes
    balances = await books_balance(ctx, wallet)  # also checks ledger.verify
    assert balances.held == 0
    assert balances.spent == outcomes["ok"] * COST <= budget
    shown = await keys.show(ctx, key["id"])
    assert shown["budget"]["held_usd"] == 0
    assert shown["budget"]["spent_usd"] == pytest.approx(outcomes["ok"] * COST / 1e6)


async def test_a_removed_members_org_keys_stop_at_the_next_request(
    ctx: Context, served: httpx.AsyncClient
) -> None:
    await make_org(ctx, "Dosia")
    await make_user(ctx, "bo", tier="enterprise")
    await add_member(ctx, "Dosia", "ada", role="owner")
    await add_member(ctx, "Dosia", "bo")
    await top_up(ctx, "5", org="Dosia")
    key = await make_key(ctx, "bo", org="Dosia")
    assert (await call(served, key["key"])).status_code == 200  # cached from now on
    removed = await orgs.remove_member(ctx, org="Dosia", username="bo")
    assert removed["revoked_key_ids"] == [key["id"]]
    response = await call(served, key["key"])
    assert response.status_code == 401, response.text
    assert (await keys.show(ctx, key["id"]))["status"] == "revoked"


async def test_calls_that_find_their_key_changed_under_them_read_it_again_once(
    ctx: Context, fakes: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key changed while the gateway serves it from its cache: each of 16 calls in flight
    on the old copy finds the change where it places its hold, they read the key anew once
    between them, and every one is served and billed once."""
    fakes.openai.script.delay = 0.05
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada", rate_limit=10_000)
    wallet = await wallet_of(ctx, user="ada")
    reads = Counter[str]()
    real = keys.resolve_digest

    async def counted(ctx: Context, digest: str) -> Any:
        reads[digest] += 1
        return await real(ctx, digest)

    monkeypatch.setattr(keys, "resolve_digest", counted)
    async with gateway(ctx, fakes) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        assert (await call(http, key["key"])).status_code == 200  # cached from now on
        await keys.update(ctx, key["id"], keys.KeyChanges(rate_limit=5_000))
        reads.clear()
        replies = await asyncio.gather(*(call(http, key["key"]) for _ in range(16)))
    assert [r.status_code for r in replies] == [200] * 16
    assert list(reads.values()) == [1]
    balances = await books_balance(ctx, wallet)  # also checks ledger.verify
    assert balances.spent == 17 * COST and balances.held == 0
