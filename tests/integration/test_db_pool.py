"""BYTESPIKE_DB_POOL_SIZE bounds the connections a process holds to PostgreSQL at once: the
pool, and as many more for a burst (what an operator sizes `max_connections` by, times the
workers)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.settings import Settings


async def held_while_busy(ctx: Context) -> tuple[datetime, datetime]:
    """From the server's clock, an interval during which this read held its connection."""
    async with ctx.db.read() as conn:
        began = (await conn.execute(sa.text("SELECT clock_timestamp()"))).scalar_one()
        await conn.execute(sa.text("SELECT pg_sleep(0.1)"))
        ended = (await conn.execute(sa.text("SELECT clock_timestamp()"))).scalar_one()
    return began, ended


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(b, 1) for b, _ in intervals] + [(e, -1) for _, e in intervals])
    at_once = most = 0
    for _, step in edges:  # an end sorts before a begin at the same instant
        at_once += step
        most = max(most, at_once)
    return most


@pytest.mark.parametrize(("pool", "most"), [("1", 2), ("3", 6)])
async def test_the_pool_size_bounds_the_connections_a_burst_holds_at_once(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch, pool: str, most: int
) -> None:
    monkeypatch.setenv("BYTESPIKE_DATABASE_URL", postgres_database)
    monkeypatch.setenv("BYTESPIKE_DB_POOL_SIZE", pool)
    ctx = Context.build(Settings())
    try:
        intervals = await asyncio.gather(*(held_while_busy(ctx) for _ in range(12)))
    finally:
        await ctx.db.close()
    assert most_at_once(intervals) <= most  # the pool, then as many again, and no more
