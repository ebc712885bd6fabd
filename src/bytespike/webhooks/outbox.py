"""The outbox: events written in the transaction of the change that caused them, and the
deliveries dispatchers claim from it.

A claim is a lease: it pushes `next_attempt_at` past the lease and stamps a claim token, in
one short transaction. A dispatcher that dies mid-flight simply lets the lease run out and
the delivery becomes due again (at least once). On PostgreSQL the claim selects with
`FOR UPDATE SKIP LOCKED`, so dispatchers sharing a database never claim the same row at the
same moment; on SQLite the single writer serialises claims.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.webhooks.tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)

_d = webhook_deliveries.c


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: int
    claim_token: str
    attempt: int  # 1 for the first attempt of this schedule
    event_id: str
    payload: str
    created_at: datetime
    endpoint_id: int
    wallet_id: int
    url: str
    secret_sealed: str


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str | None
    excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def enqueue(
    conn: AsyncConnection,
    *,
    event_id: str,
    wallet_id: int,
    event_type: str,
    payload: str,
    endpoint_ids: list[int],
    now: datetime,
) -> None:
    await conn.execute(
        sa.insert(webhook_events).values(
            id=event_id, wallet_id=wallet_id, type=event_type, payload=payload, created_at=now
        )
    )
    await conn.execute(
        sa.insert(webhook_deliveries),
        [
            {
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "status": "pending",
                "attempt_count": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in endpoint_ids
        ],
    )


def _due(now: datetime) -> sa.Select[tuple[int]]:
    """Pending deliveries whose time has come, to endpoints that are enabled."""
    e = webhook_endpoints.c
    return (
        sa.select(_d.id)
        .select_from(webhook_deliveries.join(webhook_endpoints, e.id == _d.endpoint_id))
        .where(_d.status == "pending", _d.next_attempt_at <= now, e.enabled == sa.true())
    )


async def any_due(conn: AsyncConnection, *, now: datetime) -> bool:
    return (await conn.execute(_due(now).limit(1))).first() is not None


async def claim(
    conn: AsyncConnection, *, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to enabled endpoints."""
    e = webhook_endpoints.c
    due = _due(now).order_by(_d.next_attempt_at, _d.id).limit(limit)
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=webhook_deliveries)
    ids = list((await conn.execute(due)).scalars())
    if not ids:
        return []
    token = secrets.token_hex(16)
    await conn.execute(
        sa.update(webhook_deliveries)
        .where(_d.id.in_(ids))
        .values(
            claim_token=token,
            next_attempt_at=now + lease,
            attempt_count=_d.attempt_count + 1,
        )
    )
    ev = webhook_events.c
    rows = await conn.execute(
        sa.select(
            _d.id,
            _d.claim_token,
            _d.attempt_count,
            ev.id,
            ev.payload,
            _d.created_at,
            e.id,
            e.wallet_id,
            e.url,
            e.secret_sealed,
        )
        .select_from(
            webhook_deliveries.join(webhook_events, ev.id == _d.event_id).join(
                webhook_endpoints, e.id == _d.endpoint_id
            )
        )
        .where(_d.id.in_(ids))
        .order_by(_d.next_attempt_at, _d.id)
    )
    return [Claimed(*tuple(row)) for row in rows]


async def record(
    conn: AsyncConnection,
    claimed: Claimed,
    outcome: Outcome,
    *,
    now: datetime,
    retry_at: datetime | None,
) -> bool:
    """Log the attempt and settle the delivery: succeeded, retried at `retry_at`, or failed.

    False when this claimer's lease was lost (another dispatcher re-claimed it after the
    lease ran out); the attempt is still logged, the delivery's state is left to the other.
    """
    await conn.execute(
        sa.insert(webhook_attempts).values(
            delivery_id=claimed.delivery_id,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error[:500] if outcome.error else None,
            response_excerpt=outcome.excerpt,
            attempted_at=now,
        )
    )
    if outcome.ok:
        status, next_at = "succeeded", now
    elif retry_at is not None:
        status, next_at = "pending", retry_at
    else:
        status, next_at = "failed", now
    result = await conn.execute(
        sa.update(webhook_deliveries)
        .where(_d.id == claimed.delivery_id, _d.claim_token == claimed.claim_token)
        .values(status=status, next_attempt_at=next_at, claim_token=None)
    )
    return result.rowcount == 1


async def depth(conn: AsyncConnection) -> int:
    """Deliveries not yet done (due or waiting for a retry), through the due-index."""
    query = sa.select(sa.func.count()).select_from(webhook_deliveries)
    return int((await conn.execute(query.where(_d.status == "pending"))).scalar_one())
