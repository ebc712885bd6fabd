"""SQL for usage records: one insert per metered call (with its daily rollup), and the call
list behind /me/usage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.db.direct import hot
from bytespike.upstream.base import Usage
from bytespike.usage import rollups
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
) -> dict[str, Any]:
    """A usage record's columns (a call without reported usage records no tokens)."""
    return {
        "wallet_id": wallet_id,
        "key_id": key_id,
        "hold_id": hold_id,
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
    }


async def insert(conn: AsyncConnection, record: dict[str, Any]) -> None:
    """The record and its rollup, in the caller's transaction (the settlement's)."""
    await conn.execute(_INSERT, record)
    await rollups.add(conn, record)


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
    """Newest first; `before_id` is the cursor (the last id of the previous page)."""
    u = usage_records.c
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
        query = query.where(u.id < before_id)
    rows = await conn.execute(query.order_by(u.id.desc()).limit(limit))
    return [Record(*row) for row in rows]
