"""usage.refusals.count_refusal: one row per UTC day, key and reason, counted up, in the
caller's transaction, on the general path and the group-commit writer's direct one."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.usage import refusals
from bytespike.usage.tables import refusals_daily
from tests.conftest import FakeClock
from tests.factories import make_key, make_user, wallet_of


async def rows(ctx: Context) -> list[tuple[str, int, str, int, int]]:
    r = refusals_daily.c
    async with ctx.db.read() as conn:
        found = await conn.execute(
            sa.select(r.day, r.key_id, r.reason, r.wallet_id, r.count).order_by(
                r.day, r.key_id, r.reason
            )
        )
        return [
            (day.isoformat(), key, reason, wallet, count)
            for day, key, reason, wallet, count in found
        ]


async def test_refusals_count_per_day_key_and_reason(ctx: Context, clock: FakeClock) -> None:
    await make_user(ctx, "ada")
    first, second = (await make_key(ctx, "ada"))["id"], (await make_key(ctx, "ada"))["id"]
    wallet_id = await wallet_of(ctx, user="ada")
    writes = GroupCommit(ctx.db)

    def count(key_id: int, reason: str) -> asyncio.Future[None]:
        now = clock.now()
        return asyncio.ensure_future(
            writes.run(
                lambda conn: refusals.count_refusal(
                    conn, key_id=key_id, wallet_id=wallet_id, reason=reason, now=now
                ),
                order=wallet_id,
            )
        )

    try:
        # Queued together: one batch, the same row counted up within it.
        await asyncio.gather(*(count(first, "rate_limited") for _ in range(5)))
        await asyncio.gather(count(first, "insufficient_balance"), count(second, "rate_limited"))
        clock.advance(hours=12)  # 2026-03-11 00:00 UTC: the next day's row
        await count(first, "rate_limited")
    finally:
        await writes.close()
    async with ctx.db.write() as conn:  # outside the writer: the same statement, counted on
        await refusals.count_refusal(
            conn, key_id=first, wallet_id=wallet_id, reason="rate_limited", now=clock.now()
        )
    assert await rows(ctx) == [
        ("2026-03-10", first, "insufficient_balance", wallet_id, 1),
        ("2026-03-10", first, "rate_limited", wallet_id, 5),
        ("2026-03-10", second, "rate_limited", wallet_id, 1),
        ("2026-03-11", first, "rate_limited", wallet_id, 2),
    ]


async def test_a_refusal_rolls_back_with_its_transaction(ctx: Context) -> None:
    await make_user(ctx, "ada")
    key_id, wallet_id = (await make_key(ctx, "ada"))["id"], await wallet_of(ctx, user="ada")
    with pytest.raises(RuntimeError):
        async with ctx.db.write() as conn:
            await refusals.count_refusal(
                conn, key_id=key_id, wallet_id=wallet_id, reason="x", now=ctx.clock.now()
            )
            raise RuntimeError("the use case failed after counting")
    assert await rows(ctx) == []
