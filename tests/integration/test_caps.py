"""A per-model spend cap is never passed, even by a call whose hold expired before it
settled (a call longer than the hold's TTL), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bytespike.billing import holds, ledger, metering, pricing, quotas
from bytespike.billing.metering import HoldRequest, Outcome, Ticket
from bytespike.context import Context
from bytespike.upstream.base import Usage
from tests.conftest import FakeClock
from tests.factories import make_key, make_user, top_up, wallet_of

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

    slow: Ticket = await write(ctx, lambda conn: metering.reserve(conn, hold()))
    assert slow.amount == most
    clock.advance(minutes=11)  # the slow call outlives its hold: the sweeper frees it
    assert await write(ctx, lambda conn: holds.expire_due(conn, now=clock.now())) == 1
    other: Ticket = await write(ctx, lambda conn: metering.reserve(conn, hold()))

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
