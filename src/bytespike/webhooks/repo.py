"""SQL for webhook endpoints, and the delivery history shown to their owners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.webhooks.tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)

HISTORY_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    wallet_id: int
    url: str
    description: str | None
    events: list[str]
    secret_sealed: str
    enabled: bool
    disabled_reason: str | None
    last_success_at: datetime | None
    created_at: datetime


_e = webhook_endpoints.c
_COLUMNS = (
    _e.id,
    _e.wallet_id,
    _e.url,
    _e.description,
    _e.events,
    _e.secret_sealed,
    _e.enabled,
    _e.disabled_reason,
    _e.last_success_at,
    _e.created_at,
)


async def insert(
    conn: AsyncConnection,
    *,
    wallet_id: int,
    url: str,
    description: str | None,
    events: list[str],
    secret_sealed: str,
    now: datetime,
) -> int:
    result = await conn.execute(
        sa.insert(webhook_endpoints)
        .values(
            wallet_id=wallet_id,
            url=url,
            description=description,
            events=events,
            secret_sealed=secret_sealed,
            enabled=True,
            created_at=now,
        )
        .returning(_e.id)
    )
    return int(result.scalar_one())


async def owned(conn: AsyncConnection, wallet_id: int, endpoint_id: int) -> Endpoint | None:
    """The endpoint if it belongs to `wallet_id`; another owner's id looks like no endpoint."""
    query = sa.select(*_COLUMNS).where(_e.id == endpoint_id, _e.wallet_id == wallet_id)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else Endpoint(*tuple(row))


async def by_id(conn: AsyncConnection, endpoint_id: int) -> Endpoint | None:
    row = (await conn.execute(sa.select(*_COLUMNS).where(_e.id == endpoint_id))).one_or_none()
    return None if row is None else Endpoint(*tuple(row))


async def of_wallet(conn: AsyncConnection, wallet_id: int) -> list[Endpoint]:
    query = sa.select(*_COLUMNS).where(_e.wallet_id == wallet_id).order_by(_e.id)
    return [Endpoint(*tuple(row)) for row in await conn.execute(query)]


async def subscribed(conn: AsyncConnection, wallet_id: int, event_type: str) -> list[int]:
    """Enabled endpoints of the wallet that asked for `event_type`."""
    query = sa.select(_e.id, _e.events).where(_e.wallet_id == wallet_id, _e.enabled == sa.true())
    return [row.id for row in await conn.execute(query) if event_type in row.events]


async def update(conn: AsyncConnection, endpoint_id: int, **values: Any) -> None:
    await conn.execute(sa.update(webhook_endpoints).where(_e.id == endpoint_id).values(**values))


async def delete(conn: AsyncConnection, endpoint_id: int) -> None:
    # Deliveries and their attempts go with it (ON DELETE CASCADE); events stay as history.
    await conn.execute(sa.delete(webhook_endpoints).where(_e.id == endpoint_id))


async def deliveries(
    conn: AsyncConnection, endpoint_id: int
) -> Sequence[Any]:  # rows: attributes named as selected
    d, ev = webhook_deliveries.c, webhook_events.c
    query = (
        sa.select(
            d.id,
            d.event_id,
            ev.type,
            d.status,
            d.attempt_count,
            d.next_attempt_at,
            d.created_at,
        )
        .select_from(webhook_deliveries.join(webhook_events, ev.id == d.event_id))
        .where(d.endpoint_id == endpoint_id)
        .order_by(d.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return (await conn.execute(query)).all()


async def attempts(
    conn: AsyncConnection, delivery_ids: list[int]
) -> Sequence[Any]:  # rows: attributes named as selected
    a = webhook_attempts.c
    query = (
        sa.select(a.delivery_id, a.status_code, a.latency_ms, a.error, a.attempted_at)
        .where(a.delivery_id.in_(delivery_ids))
        .order_by(a.id)
    )
    return (await conn.execute(query)).all()


async def reschedule(
    conn: AsyncConnection, endpoint_id: int, delivery_id: int, now: datetime
) -> bool:
    """Offer a delivery again now, with a fresh retry schedule; False if it is not this
    endpoint's."""
    d = webhook_deliveries.c
    result = await conn.execute(
        sa.update(webhook_deliveries)
        .where(d.id == delivery_id, d.endpoint_id == endpoint_id)
        .values(status="pending", next_attempt_at=now, attempt_count=0, claim_token=None)
    )
    return result.rowcount == 1
