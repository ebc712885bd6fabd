"""A per-model spend cap is never passed, even by a call whose hold expired before it
settled (a call longer than the hold's TTL); its owner is told once per quota period that it
was reached (`quota.cap_reached`), by its first refusal or by the spend reaching it. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from bytespike.billing import holds, ledger, metering, pricing, quotas
from bytespike.billing.metering import HoldRequest, Outcome
from bytespike.catalog import Model
from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.errors import QuotaCapReached
from bytespike.money import to_usd_number
from bytespike.upstream.base import Usage
from bytespike.webhooks import events
from bytespike.webhooks.tables import webhook_events
from tests.conftest import FakeClock
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.integration.webhooks_support import subscribed

TTL = timedelta(minutes=10)
TOKENS = 1_000
OUTCOME = Outcome(status="ok", http_status=200, stream=False, latency_ms=1, provider="openai")


async def write(ctx: Context, op: Any) -> Any:
    async with ctx.db.write() as conn:
        return await op(conn)


async def test_a_late_settlement_of_an_expired_hold_stays_within_the_cap(
    ctx: Context, clock: FakeClock
) -> None:
    model = ctx.catalog.get("gpt-5-4")
    assert model is not None
    most = pricing.hold_amount(model, TOKENS, TOKENS)
    cap = most + most // 2  # room for one call at its most, and half another
    await make_user(ctx, "ada")
    await top_up(ctx, "100", user="ada")
    key = await make_key(ctx, "ada", models=[("gpt-5-4", cap)])
    wallet = await wallet_of(ctx, user="ada")

    def hold() -> HoldRequest:
        return HoldRequest(
            key_id=key["id"],
            wallet_id=wallet,
            model=model,
            quota_reset=None,
            capped=True,
            input_tokens=TOKENS,
            max_tokens=TOKENS,
            now=clock.now(),
            ttl=TTL,
        )

    slow = metering.ticket_or_raise(await write(ctx, lambda conn: metering.reserve(conn, hold())))
    assert slow.amount == most
    clock.advance(minutes=11)  # the slow call outlives its hold: the sweeper frees it
    assert await write(ctx, lambda conn: holds.expire_due(conn, now=clock.now())) == 1
    other = metering.ticket_or_raise(await write(ctx, lambda conn: metering.reserve(conn, hold())))

    # The slow call finally reports usage worth its whole old hold; the cap, which counts
    # the other call's hold now, has room for only half of that.
    usage = Usage(TOKENS, TOKENS)
    charged = await write(
        ctx, lambda conn: metering.settle(conn, slow, usage, OUTCOME, now=clock.now())
    )
    assert charged == cap - most
    assert (
        await write(ctx, lambda conn: metering.settle(conn, other, usage, OUTCOME, now=clock.now()))
        == most
    )

    async with ctx.db.read() as conn:
        state = await quotas.cap_state(conn, key["id"], "gpt-5-4", None)
        spent = (await quotas.used_by_model(conn, key["id"], None))["gpt-5-4"]
        assert await ledger.verify(conn, wallet) == []
    assert state is not None and (state.spent, state.held) == (cap, 0)
    assert spent == cap


def most_of(ctx: Context) -> tuple[Model, int]:
    """The model, and the most one call of TOKENS in and TOKENS out may cost on it."""
    model = ctx.catalog.get("gpt-5-4")
    assert model is not None
    return model, pricing.hold_amount(model, TOKENS, TOKENS)


async def capped(ctx: Context, cap: int, quota_reset: str | None) -> tuple[int, int]:
    """ada, with 100 USD, a key capped at `cap` on gpt-5-4 and an endpoint listening for
    quota.cap_reached (so the events are stored); (key id, wallet id)."""
    return await subscribed(
        ctx,
        "ada",
        "100",
        events.QUOTA_CAP_REACHED,
        models=[("gpt-5-4", cap)],
        quota_reset=quota_reset,
    )


def asking(
    ctx: Context, key_id: int, wallet_id: int, quota_reset: str | None, max_tokens: int = TOKENS
) -> HoldRequest:
    model, _ = most_of(ctx)
    return HoldRequest(
        key_id=key_id,
        wallet_id=wallet_id,
        model=model,
        quota_reset=quota_reset,
        capped=True,
        input_tokens=TOKENS,
        max_tokens=max_tokens,
        now=ctx.clock.now(),
        ttl=TTL,
    )


async def reserve(ctx: Context, req: HoldRequest) -> metering.Reservation:
    return await write(ctx, lambda conn: metering.reserve(conn, req))


async def told(ctx: Context) -> list[dict[str, Any]]:
    """The quota.cap_reached events in the outbox, oldest first."""
    async with ctx.db.read() as conn:
        e = webhook_events.c
        query = sa.select(e.payload).where(e.type == events.QUOTA_CAP_REACHED).order_by(e.id)
        payloads = (await conn.execute(query)).scalars().all()
    return [orjson.loads(payload)["data"] for payload in payloads]


async def no_hold_was_placed(ctx: Context, wallet_id: int) -> None:
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet_id) == []
        after = await ledger.balances(conn, wallet_id)
    assert (after.available, after.held, after.spent) == (100_000_000, 0, 0)


@pytest.mark.parametrize("quota_reset", ["daily", None], ids=["daily", "lifetime"])
async def test_a_refusal_tells_the_owner_once_a_period(
    ctx: Context, clock: FakeClock, quota_reset: str | None
) -> None:
    """A cap that refuses a call before spend ever reaches it (the hold would pass it) is
    reached: the first refusal tells the owner, later ones in the period do not, and the
    next period's first refusal tells them again (a lifetime cap has no next period)."""
    _, most = most_of(ctx)
    cap = most // 2
    key_id, wallet_id = await capped(ctx, cap, quota_reset)
    first = await reserve(ctx, asking(ctx, key_id, wallet_id, quota_reset))
    assert isinstance(first, metering.CapRefusal)
    with pytest.raises(QuotaCapReached):
        metering.ticket_or_raise(first)
    assert await told(ctx) == [
        {
            "key_id": key_id,
            "model": "gpt-5-4",
            "quota_cap_usd": to_usd_number(cap),
            "quota_used_usd": 0.0,
        }
    ]
    clock.advance(hours=1)
    again = await reserve(ctx, asking(ctx, key_id, wallet_id, quota_reset))
    assert isinstance(again, metering.CapRefusal)
    assert len(await told(ctx)) == 1
    clock.advance(days=1)
    next_day = await reserve(ctx, asking(ctx, key_id, wallet_id, quota_reset))
    assert isinstance(next_day, metering.CapRefusal)
    assert len(await told(ctx)) == (2 if quota_reset else 1)
    await no_hold_was_placed(ctx, wallet_id)


async def test_a_settlement_reaching_the_cap_tells_the_owner_once_a_period(
    ctx: Context, clock: FakeClock
) -> None:
    """Spend that reaches the cap tells the owner; the refusals that follow in the period do
    not; next month's spend reaching it again does."""
    _, most = most_of(ctx)
    key_id, wallet_id = await capped(ctx, most, "monthly")
    usage = Usage(TOKENS, TOKENS)

    async def call() -> int:
        ticket = metering.ticket_or_raise(
            await reserve(ctx, asking(ctx, key_id, wallet_id, "monthly"))
        )
        return await write(
            ctx, lambda conn: metering.settle(conn, ticket, usage, OUTCOME, now=clock.now())
        )

    assert await call() == most
    assert [(e["quota_cap_usd"], e["quota_used_usd"]) for e in await told(ctx)] == [
        (to_usd_number(most), to_usd_number(most))
    ]
    refused = await reserve(ctx, asking(ctx, key_id, wallet_id, "monthly", max_tokens=1))
    assert isinstance(refused, metering.CapRefusal)
    assert len(await told(ctx)) == 1
    clock.advance(days=31)  # 10 March to 10 April: a new month, the cap's room is back
    assert await call() == most
    assert len(await told(ctx)) == 2
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet_id) == []


async def test_spend_reaching_a_cap_that_refused_already_tells_nobody_again(ctx: Context) -> None:
    """Whichever comes first, refusal or spend, tells the owner: the other is silent."""
    _, most = most_of(ctx)
    key_id, wallet_id = await capped(ctx, 2 * most, None)
    tickets = [
        metering.ticket_or_raise(await reserve(ctx, asking(ctx, key_id, wallet_id, None)))
        for _ in range(2)
    ]
    assert isinstance(await reserve(ctx, asking(ctx, key_id, wallet_id, None)), metering.CapRefusal)
    usage = Usage(TOKENS, TOKENS)
    for ticket in tickets:
        await write(
            ctx,
            lambda conn, t=ticket: metering.settle(conn, t, usage, OUTCOME, now=ctx.clock.now()),
        )
    assert [e["quota_used_usd"] for e in await told(ctx)] == [0.0]
    async with ctx.db.read() as conn:
        state = await quotas.cap_state(conn, key_id, "gpt-5-4", None)
        assert await ledger.verify(conn, wallet_id) == []
    assert state is not None and state.spent == state.cap


async def test_refusals_in_a_batch_commit_one_event_and_each_raises(ctx: Context) -> None:
    """Group commit: the refusal is an answer, not an exception, inside the batch, so the
    event it wrote commits with the batch; each caller raises it afterwards."""
    _, most = most_of(ctx)
    key_id, wallet_id = await capped(ctx, most // 2, "daily")
    req = asking(ctx, key_id, wallet_id, "daily")
    writes = GroupCommit(ctx.db)

    async def place(conn: Any) -> metering.Reservation:
        return await metering.reserve(conn, req)

    try:
        results = await asyncio.gather(*(writes.run(place, order=wallet_id) for _ in range(5)))
    finally:
        await writes.close()
    assert all(isinstance(result, metering.CapRefusal) for result in results)
    for result in results:
        with pytest.raises(QuotaCapReached):
            metering.ticket_or_raise(result)
    assert len(await told(ctx)) == 1
    await no_hold_was_placed(ctx, wallet_id)
