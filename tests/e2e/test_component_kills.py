"""Each component a gateway depends on, killed at a random point under load (24 clients
calling chat completions, streamed or not, through a paced upstream so calls are always in
flight), and then the books checked (kill_support.assert_books): no hold left once the
dead calls' holds expire, `ledger verify` clean, no money lost, and every call answered
whole billed exactly once.

- The gateway process, SIGKILLed, on SQLite and PostgreSQL: restarted on the same
  database, it serves at once and its sweeper expires the dead calls' holds.
- PostgreSQL lost: every connection through a relay cut and new ones refused for a while,
  then back; or the gateway's backends terminated. Calls meanwhile are 503 with
  Retry-After, never 500; the same process serves again once it is back.
- Redis lost under two replicas sharing it for the rate limit: calls go on being answered
  (the limiter fails open, ratelimit/redis.py), and a wallet the storm runs dry while Redis
  is gone is never overdrawn (holds live in the database and fail closed).
- And PostgreSQL lost at the worst point, chosen rather than drawn: a settlement commits
  and its reply is lost with the connection; the call is answered and billed once.

SQLite is embedded in the gateway's process: killing the process is its database's fault
here (a busy or unopenable file is test_database_outage.py's). Redis is a PostgreSQL
deployment's, as replicas are.

Each test's kill point is drawn from a seed that every failure states;
BYTESPIKE_TEST_SEED=<seed> replays it. The assertions hold wherever the kill falls."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bytespike.context import Context
from bytespike.money import parse_usd
from bytespike.usage.tables import usage_records
from tests.database_faults import Relay, terminate_other_backends
from tests.e2e.gateway_support import gateway, upstreams
from tests.e2e.kill_support import (
    SHORT_HOLDS,
    Call,
    Load,
    Plan,
    assert_books,
    calling,
    expired,
    fund,
    make_call,
    paced_upstream,
    reply_dropping,
    strike_point,
)
from tests.e2e.serve_process import gateway_env, gateway_process
from tests.factories import make_key, top_up
from tests.processes import clean_env
from tests.services import REDIS_URL, require

ACCOUNT = "/api/v1/me/account"
AFTER = 40  # calls that must end well once the component is back
PROBES = 6  # at a limit of 2 a minute, 6 calls in a row see a refusal in any window


@pytest.fixture
def plan() -> Plan:
    drawn = Plan.drawn()
    print(f"BYTESPIKE_TEST_SEED={drawn.seed}")  # shown with a failure's captured output
    return drawn


def began_and_ended(load: Load, phase: str) -> list[Call]:
    """The calls that began in `phase` and ended before the test moved on from it."""
    return [c for c in load.calls if c.phase == c.ended == phase]


async def test_a_gateway_killed_mid_load_restarts_on_books_that_close(
    ctx: Context, db_url: str, tmp_path: Path, plan: Plan
) -> None:
    key, wallet = await fund(ctx, "10")
    with plan.told():
        async with paced_upstream() as fake:
            env = gateway_env(db_url, fake, **SHORT_HOLDS)
            async with (
                gateway_process(env, tmp_path) as (proc, base),
                calling([base], key, plan) as load,
            ):
                await strike_point(load, plan, "SIGKILL", (20, 150))
                proc.kill()
                await proc.wait()
            async with gateway_process(env, tmp_path) as (_, base):
                async with calling([base], key, plan) as again:
                    await again.answered(AFTER)
                await expired(ctx)
                balances = await assert_books(
                    ctx, env, wallet, parse_usd("10"), load.calls + again.calls
                )
        # The calls the kill caught lost their connection; none was answered with an error.
        assert {c.status for c in load.calls} <= {200, None}
        assert any(not c.whole for c in load.calls), "no call was in flight at the kill"
        assert [c for c in again.calls if c.status != 200 or not c.whole] == []
        assert balances.spent > 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_postgresql_lost_mid_load_is_503_until_it_is_back(
    ctx: Context, db_url: str, tmp_path: Path, plan: Plan
) -> None:
    key, wallet = await fund(ctx, "10")
    target = make_url(db_url)
    relay = Relay(target.port or 5432)
    await relay.resume()
    relayed = target.set(port=relay.port).render_as_string(hide_password=False)
    outage = plan.rng.uniform(1.0, 3.0)
    with plan.told():
        try:
            async with paced_upstream() as fake:
                env = gateway_env(relayed, fake, **SHORT_HOLDS)
                async with gateway_process(env, tmp_path) as (_, base):
                    async with calling([base], key, plan) as load:
                        await strike_point(load, plan, "PostgreSQL cut", (20, 150))
                        await relay.cut()
                        load.phase = "outage"
                        plan.steps.append(f"back after {outage:.3f}s")
                        await asyncio.sleep(outage)
                        await relay.resume()
                        load.phase = "back"
                        await load.answered(AFTER, where=lambda c: c.phase == "back")
                    await expired(ctx)
                    direct = gateway_env(db_url, fake)
                    await assert_books(ctx, direct, wallet, parse_usd("10"), load.calls)
        finally:
            await relay.cut()
        assert_503_or_200(load.calls)
        during = began_and_ended(load, "outage")
        assert during, "no call began and ended while PostgreSQL was gone"
        assert [c for c in during if c.status != 503] == []  # no hold without the database
        # The same process serves again, from the first call begun once it is back.
        back = [c for c in load.calls if c.phase == "back"]
        assert [c for c in back if c.status != 200 or not c.whole] == []


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_postgresql_backends_terminated_mid_load_are_503_not_500(
    ctx: Context, db_url: str, tmp_path: Path, plan: Plan
) -> None:
    key, wallet = await fund(ctx, "10")
    await ctx.db.close()  # its connections would be terminated too; the checks open new ones
    with plan.told():
        async with paced_upstream() as fake:
            env = gateway_env(db_url, fake, **SHORT_HOLDS)
            async with gateway_process(env, tmp_path) as (_, base):
                async with calling([base], key, plan) as load:
                    await strike_point(load, plan, "backends terminated", (20, 150))
                    # Some may have exited on their own meanwhile (the pool lets them go).
                    assert (await terminate_other_backends(db_url))[1] > 0
                    load.phase = "after"
                    await load.answered(AFTER, where=lambda c: c.phase == "after" and c.whole)
                await expired(ctx)
                await assert_books(ctx, env, wallet, parse_usd("10"), load.calls)
        assert_503_or_200(load.calls)


def assert_503_or_200(calls: list[Call]) -> None:
    """A call the database's loss reached was refused as unavailable, never as a bug; the
    gateway itself never went away (every call had an HTTP answer)."""
    assert Counter(c.status for c in calls).keys() <= {200, 503}, Counter(c.status for c in calls)
    refused = [c for c in calls if c.status == 503]
    assert [c for c in refused if c.code != "service_unavailable" or not c.retry_after] == []


async def probe(urls: list[str], key: str) -> list[int]:
    """PROBES account reads with `key`, through the replicas in turn."""
    async with httpx.AsyncClient(timeout=30) as http:
        return [
            (await http.get(urls[i % len(urls)] + ACCOUNT, headers={"x-api-key": key})).status_code
            for i in range(PROBES)
        ]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize(
    ("usd", "at_cut"),
    # In the wallet from the start, and topped up as Redis goes. The second runs dry while
    # Redis is gone however fast the machine: every call is refused until the money comes.
    [("10", None), ("0.001", "0.04")],
    ids=["funded", "run-dry"],
)
async def test_redis_lost_under_two_replicas_fails_open_and_never_overdraws(
    ctx: Context, db_url: str, tmp_path: Path, plan: Plan, usd: str, at_cut: str | None
) -> None:
    require(REDIS_URL, 6379, "Redis")
    key, wallet = await fund(ctx, usd)
    limited = (await make_key(ctx, "ada", rate_limit=2))["key"]
    redis = urlparse(REDIS_URL)
    relay = Relay(redis.port or 6379)
    await relay.resume()
    relayed = redis._replace(netloc=f"{redis.hostname}:{relay.port}").geturl()
    logs = [tmp_path / "a", tmp_path / "b"]
    for log in logs:
        log.mkdir()
    with plan.told():
        try:
            async with paced_upstream() as fake:
                # Redis counts per key id, and every run restarts the ids: a namespace of its own.
                prefix = f"test-{uuid.uuid4().hex}"
                env = gateway_env(
                    db_url, fake, BYTESPIKE_REDIS_URL=relayed, BYTESPIKE_REDIS_PREFIX=prefix
                )
                async with (
                    gateway_process(env, logs[0]) as (_, first),
                    gateway_process(env, logs[1]) as (_, second),
                ):
                    urls = [first, second]
                    assert 429 in await probe(urls, limited)  # one count, through both
                    async with calling(urls, key, plan) as load:
                        await strike_point(load, plan, "Redis cut", (10, 40))
                        await relay.cut()
                        load.phase = "cut"
                        if at_cut:
                            await top_up(ctx, at_cut, user="ada")
                        load.phase = "outage"
                        assert await probe(urls, limited) == [200] * PROBES  # fails open
                        if at_cut:
                            await load.answered(
                                10, where=lambda c: c.phase == "outage" and c.status == 402
                            )
                        else:
                            await load.answered(
                                plan.rng.randint(40, 120), where=lambda c: c.phase == "outage"
                            )
                        await relay.resume()
                        load.phase = "back"
                        assert 429 in await probe(urls, limited)  # counted again
                        await load.answered(AFTER // 2, where=lambda c: c.phase == "back")
                    topped_up = parse_usd(usd) + (parse_usd(at_cut) if at_cut else 0)
                    await assert_books(ctx, env, wallet, topped_up, load.calls)
        finally:
            await relay.cut()
        statuses = Counter(c.status for c in load.calls)
        assert statuses.keys() <= ({200, 402} if at_cut else {200}), statuses
        assert [c for c in load.calls if c.status == 200 and not c.whole] == []
        assert {c.code for c in load.calls if c.status == 402} <= {"insufficient_balance"}
        if at_cut:
            assert {c.status for c in began_and_ended(load, "before")} == {402}  # not a cent yet
            # Paid for, then refused, while Redis was gone: the storm ran the wallet dry then.
            outage = {c.status for c in load.calls if c.phase == "outage"}
            assert outage == {200, 402}, outage


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_settlement_committed_as_its_connection_drops_is_answered_and_billed_once(
    ctx: Context, db_url: str
) -> None:
    """The worst point to lose PostgreSQL, chosen rather than drawn: a call's settlement
    commits and the connection drops before the reply reaches the gateway. The client was
    billed, so it must get its answer (a 500 invites the SDK's retry: billed twice), and
    the call is billed once."""
    key, wallet = await fund(ctx, "10")
    calls = [Call(f"lost-reply-{i}", stream=False, phase="") for i in range(2)]
    async with (
        reply_dropping(ctx, db_url) as (through, relay),
        upstreams() as fakes,
        gateway(through, fakes) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        fakes.openai.script.delay = 0.5  # time to arm the relay while the upstream answers
        # The first call prepares the statements on the relayed connection.
        await make_call(http, "", key, calls[0])
        second = asyncio.create_task(make_call(http, "", key, calls[1]))
        # Its hold placed, the upstream asked (the fake has no event to await for it).
        while len(fakes.openai.requests) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        relay.armed = True  # the next statement is its settlement
        await second
    env = clean_env(BYTESPIKE_DATABASE_URL=db_url)
    await assert_books(ctx, env, wallet, parse_usd("10"), calls)
    async with ctx.db.read() as conn:
        billed = (await conn.execute(sa.select(usage_records.c.request_id))).scalars().all()
    assert sorted(billed) == [c.request_id for c in calls]  # each call billed, once
    assert [(c.status, c.whole) for c in calls] == [(200, True)] * 2, f"billed, yet: {calls}"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_hold_committed_as_its_connection_drops_is_not_left_behind(
    ctx: Context, db_url: str
) -> None:
    """The same point on the hold's side: a call's hold commits and the connection drops
    before the reply reaches the gateway. Run again (db/batch.py), the hold is placed anew
    and the first one given back at once: nothing stays held once the call is answered,
    not until the first hold's TTL."""
    key, wallet = await fund(ctx, "10")
    calls = [Call(f"lost-hold-{i}", stream=False, phase="") for i in range(2)]
    async with (
        reply_dropping(ctx, db_url) as (through, relay),
        upstreams() as fakes,
        gateway(through, fakes) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        # The first call prepares the statements and caches the key: the second call's
        # first statement is its hold.
        await make_call(http, "", key, calls[0])
        relay.armed = True
        await make_call(http, "", key, calls[1])
    async with ctx.db.read() as conn:
        statuses = (
            (
                await conn.execute(
                    sa.text("SELECT status FROM holds WHERE wallet_id = :w"), {"w": wallet}
                )
            )
            .scalars()
            .all()
        )
    assert "pending" not in statuses, statuses
    assert sorted(statuses) == ["released", "settled", "settled"], statuses  # one given back
    env = clean_env(BYTESPIKE_DATABASE_URL=db_url)
    await assert_books(ctx, env, wallet, parse_usd("10"), calls)
    assert [(c.status, c.whole) for c in calls] == [(200, True)] * 2, calls
