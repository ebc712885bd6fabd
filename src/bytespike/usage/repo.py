"""SQL for usage records: one insert per metered call (with its daily rollup), and the call
list behind /me/usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing.pricing import Receipt
from bytespike.clock import as_utc
from bytespike.db.direct import hot
from bytespike.upstream.base import Usage
from bytespike.upstream.deployments import Attempt
from bytespike.usage import receipts, rollups
from bytespike.usage.tables import usage_records


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    key_id: int
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micros: int
    status: str
    http_status: int
    stream: bool
    latency_ms: int
    created_at: datetime
    request_id: str | None


_INSERT = hot(sa.insert(usage_records))  # built once: one per metered call


def row(
    *,
    wallet_id: int,
    key_id: int,
    hold_id: int | None,
    model: str,
    provider: str,
    usage: Usage | None,
    cost: int,
    status: str,
    http_status: int,
    stream: bool,
    latency_ms: int,
    now: datetime,
    request_id: str | None = None,
    attempts: Sequence[Attempt] = (),
    receipt: Receipt | None = None,
    hold_entry_id: int | None = None,
    settle_entry_id: int | None = None,
) -> dict[str, Any]:
    """A usage record's columns (a call without reported usage records no tokens), its
    receipt's among them (usage/receipts.py)."""
    return {
        "wallet_id": wallet_id,
        "key_id": key_id,
        "hold_id": hold_id,
        "hold_entry_id": hold_entry_id,
        "settle_entry_id": settle_entry_id,
        "model": model,
        "provider": provider,
        "input_tokens": usage.input_tokens if usage else 0,
        "output_tokens": usage.output_tokens if usage else 0,
        "cached_tokens": usage.cached_tokens if usage else 0,
        "cost_micros": cost,
        "status": status,
        "http_status": http_status,
        "stream": stream,
        "latency_ms": latency_ms,
        "created_at": now,
        "request_id": request_id,
        "attempts": orjson.dumps([a.as_json() for a in attempts]).decode() if attempts else None,
        **receipts.columns(usage, receipt),
    }


async def insert(conn: AsyncConnection, record: dict[str, Any]) -> None:
    """The record and its rollup, in the caller's transaction (the settlement's)."""
    await conn.execute(_INSERT, record)
    await rollups.add(conn, record)


async def recorded_cost(
    conn: AsyncConnection, hold_id: int, wallet_id: int, since: datetime | None
) -> int | None:
    """What the call of hold `hold_id` was charged, if its usage record is written (only
    that call's settlement writes one for its hold); None if it is not."""
    cost = (await conn.execute(recorded_query(hold_id, wallet_id, since))).scalar_one_or_none()
    return None if cost is None else int(cost)


# A record is written after its call began; the minute allows for the clock stepping back.
CLOCK_SLACK = timedelta(minutes=1)


def recorded_query(hold_id: int, wallet_id: int, since: datetime | None) -> sa.Select[Any]:
    """The hold's record among its wallet's records since the call began (`since`): a range
    of the wallet's time index, as no index leads with `hold_id`."""
    u = usage_records.c
    query = sa.select(u.cost_micros).where(u.wallet_id == wallet_id, u.hold_id == hold_id)
    if since is not None:
        query = query.where(u.created_at >= since - CLOCK_SLACK)
    return query.limit(1)


def _scope(
    query: Any,
    wallet_id: int,
    key_ids: list[int] | None,
    model: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Any:
    u = usage_records.c
    query = query.where(u.wallet_id == wallet_id)
    if key_ids is not None:
        query = query.where(u.key_id.in_(key_ids))
    if model is not None:
        query = query.where(u.model == model)
    if since is not None:
        query = query.where(u.created_at >= since)
    if until is not None:
        query = query.where(u.created_at < until)
    return query


async def page(
    conn: AsyncConnection,
    wallet_id: int,
    *,
    key_ids: list[int] | None,
    model: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[Record]:
    """Newest first: by time, then id, the order of ix_usage_wallet_time_id, so a range of
    days is read from the index `limit` rows at a time and never sorted. `before_id` is the
    cursor (the last id of the previous page): the page goes on below where that call
    stands in this order; a cursor naming no call of this wallet is an empty page."""
    u = usage_records.c
    after = None
    if before_id is not None:
        after = await _created_at(conn, wallet_id, before_id)
        if after is None:
            return []
        # Below the cursor is below `until` too. Given both, SQLite starts its index scan at
        # the bound written first, which may be the range's top, far above the cursor.
        if until is not None and as_utc(after) < until:
            until = None
    query = sa.select(
        u.id,
        u.key_id,
        u.model,
        u.provider,
        u.input_tokens,
        u.output_tokens,
        u.cached_tokens,
        u.cost_micros,
        u.status,
        u.http_status,
        u.stream,
        u.latency_ms,
        u.created_at,
        u.request_id,
    )
    query = _scope(query, wallet_id, key_ids, model, since, until)
    if before_id is not None:
        query = query.where(sa.tuple_(u.created_at, u.id) < (after, before_id))
    rows = await conn.execute(query.order_by(u.created_at.desc(), u.id.desc()).limit(limit))
    return [Record(*row) for row in rows]


async def _created_at(conn: AsyncConnection, wallet_id: int, record_id: int) -> datetime | None:
    u = usage_records.c
    query = sa.select(u.created_at).where(u.id == record_id, u.wallet_id == wallet_id)
    found: datetime | None = (await conn.execute(query)).scalar_one_or_none()
    return found
