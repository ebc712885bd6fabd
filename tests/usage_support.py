"""Usage for the usage tests, made by the real metering code (a mock call through the
gateway, any catalog model through `metering`, a refusal), and the check that the daily
rollups agree with the usage records they count: one row per UTC day, wallet, key and
model, summing its records."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from bytespike.billing import holds, metering
from bytespike.billing.metering import HoldRequest, Outcome
from bytespike.clock import as_utc
from bytespike.context import Context
from bytespike.upstream.base import Usage
from bytespike.usage import refusals
from bytespike.usage.tables import usage_daily, usage_records
from tests.conftest import FakeClock

OUTCOME = Outcome(status="ok", http_status=200, stream=False, latency_ms=30, provider="test")

SUMMED = ("input_tokens", "output_tokens", "cached_tokens", "cost_micros")


async def mock_call(client: httpx.AsyncClient, key: dict[str, Any], text: str) -> None:
    """A real metered call to the built-in `mock` model, through the whole request path."""
    answer = await client.post(
        "/v1/chat/completions",
        json={"model": "mock", "messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key['key']}"},
    )
    assert answer.status_code == 200, answer.text


async def metered(
    ctx: Context,
    key: dict[str, Any],
    wallet_id: int,
    model: str,
    usage: Usage | None,
    *,
    outlived: FakeClock | None = None,
) -> tuple[metering.Ticket, int]:
    """A call of any catalog model settled by the metering code (general path); without
    usage the hold is released, and the call is still counted. `outlived`: the call outlives
    its hold's TTL on this clock (the sweeper expires the hold, the settlement then charges
    `available`). Its ticket, and what it was charged."""
    found = ctx.catalog.get(model)
    assert found is not None
    req = HoldRequest(
        key_id=key["id"],
        wallet_id=wallet_id,
        model=found,
        quota_reset=None,
        capped=False,
        input_tokens=2_000,
        max_tokens=500,
        now=ctx.clock.now(),
        ttl=timedelta(minutes=10),
    )
    async with ctx.db.write() as conn:
        ticket = metering.ticket_or_raise(await metering.reserve(conn, req))
    if outlived is not None:
        outlived.advance(seconds=req.ttl.total_seconds() + 1)
        async with ctx.db.write() as conn:
            assert await holds.expire_due(conn, now=ctx.clock.now()) == 1
    async with ctx.db.write() as conn:
        charged = await metering.settle(conn, ticket, usage, OUTCOME, now=ctx.clock.now())
    return ticket, charged


async def refuse(ctx: Context, key: dict[str, Any], wallet_id: int, reason: str) -> None:
    async with ctx.db.write() as conn:
        await refusals.count_refusal(
            conn, key_id=key["id"], wallet_id=wallet_id, reason=reason, now=ctx.clock.now()
        )


async def rollups_and_records(ctx: Context) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """(usage_daily, usage_records summed the same way), keyed by day, wallet, key, model."""
    u, d = usage_records.c, usage_daily.c
    async with ctx.db.read() as conn:
        records = await conn.execute(
            sa.select(u.created_at, u.wallet_id, u.key_id, u.model, *(u[n] for n in SUMMED))
        )
        summed: dict[Any, Counter[str]] = defaultdict(Counter)
        latest: dict[Any, Any] = {}
        for created_at, wallet_id, key_id, model, *values in records:
            group = (as_utc(created_at).date(), wallet_id, key_id, model)
            summed[group].update({"requests": 1, **dict(zip(SUMMED, values, strict=True))})
            latest[group] = max(latest.get(group, as_utc(created_at)), as_utc(created_at))
        rolled = await conn.execute(
            sa.select(
                d.day, d.wallet_id, d.key_id, d.model, d.requests, *(d[n] for n in SUMMED)
            ).add_columns(d.last_at)
        )
        rollups = {
            (day, wallet_id, key_id, model): (requests, *values[:-1], as_utc(values[-1]))
            for day, wallet_id, key_id, model, requests, *values in rolled
        }
    expected = {
        group: (sums["requests"], *(sums[n] for n in SUMMED), latest[group])
        for group, sums in summed.items()
    }
    return rollups, expected


async def assert_rollups_match(ctx: Context) -> None:
    rollups, expected = await rollups_and_records(ctx)
    assert rollups == expected
