"""Per-key, per-model spend: quota periods, how much of a cap has been used, and the
counters that enforce caps.

What a key has used comes from the daily rollups (usage_daily, as the keys' listing reads
it): each settlement adds the micros its ledger entry charged to them in the same
transaction, so the account endpoint shows what was charged, summing a row per day and
model rather than the ledger's two entries per call (the console's dashboard, its first
paint, must not slow as a key ages).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.clock import as_utc
from bytespike.keys import repo as keys_repo
from bytespike.keys.tables import api_key_models


def period_start(reset: str | None, now: datetime) -> datetime | None:
    """Start (UTC) of the quota period containing `now`; None for a lifetime quota."""
    if reset is None:
        return None
    day = as_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if reset == "daily":
        return day
    if reset == "weekly":  # ISO weeks: Monday 00:00 UTC
        return day - timedelta(days=day.weekday())
    if reset == "monthly":
        return day.replace(day=1)
    raise ValueError(f"unknown quota reset {reset!r}")


async def used_by_model(
    conn: AsyncConnection, key_id: int, since: datetime | None
) -> dict[str, int]:
    """Micros this key has spent on each model since `since` (a period's start, a UTC
    midnight, as `period_start` gives) or ever: what the keys' own listing shows."""
    day = None if since is None else as_utc(since).date()
    return await keys_repo.spend_by_model(conn, key_id, day)


# Per-model spend caps, enforced with counters kept on the key's roster row: the hold that
# would take `spent this period + held + amount` past the cap is refused in the same
# transaction that places it, so concurrent calls can never overshoot.


@dataclass(frozen=True, slots=True)
class CapState:
    cap: int
    spent: int  # settled in the current period
    held: int  # reserved by calls in flight

    @property
    def room(self) -> int:
        return max(0, self.cap - self.spent - self.held)


async def cap_state(
    conn: AsyncConnection, key_id: int, model: str, period: datetime | None
) -> CapState | None:
    """The cap on `model` for this key and its use in `period`; None when uncapped. Locks the
    row on PostgreSQL until commit, so the room read is still there when it is taken."""
    m = api_key_models.c
    query = sa.select(m.cap_micros, m.period_start, m.period_spent_micros, m.held_micros).where(
        m.key_id == key_id, m.model == model
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    row = (await conn.execute(query)).one_or_none()
    if row is None or row.cap_micros is None:
        return None
    spent = row.period_spent_micros if same_period(row.period_start, period) else 0
    return CapState(cap=int(row.cap_micros), spent=int(spent), held=int(row.held_micros))


def same_period(stored: datetime | None, period: datetime | None) -> bool:
    if stored is None or period is None:
        return stored is None and period is None
    return as_utc(stored) == as_utc(period)


async def hold(conn: AsyncConnection, key_id: int, model: str, amount: int) -> None:
    """Count a new hold against the cap (the caller checked the room under the row lock)."""
    m = api_key_models.c
    await conn.execute(
        sa.update(api_key_models)
        .where(m.key_id == key_id, m.model == model, m.cap_micros.is_not(None))
        .values(held_micros=m.held_micros + amount)
    )


async def unhold(
    conn: AsyncConnection,
    key_id: int | None,
    model: str | None,
    amount: int,
    *,
    charged: int = 0,
    period: datetime | None = None,
) -> CapState | None:
    """A hold ended: stop counting it, and count what it charged in `period`. Returns the
    cap's state after, or None when the model is uncapped for this key."""
    if key_id is None or model is None:
        return None
    m = api_key_models.c
    same = m.period_start.is_not_distinct_from(period)
    # Never below zero: a hold placed before the cap was set (`keys update`) was not counted.
    values: dict[str, Any] = {
        "held_micros": sa.case((m.held_micros >= amount, m.held_micros - amount), else_=0)
    }
    if charged:
        values["period_spent_micros"] = sa.case(
            (same, m.period_spent_micros + charged), else_=charged
        )
        values["period_start"] = period
    row = (
        await conn.execute(
            sa.update(api_key_models)
            .where(m.key_id == key_id, m.model == model, m.cap_micros.is_not(None))
            .values(**values)
            .returning(m.cap_micros, m.period_spent_micros, m.held_micros)
        )
    ).one_or_none()
    if row is None:
        return None
    return CapState(cap=int(row[0]), spent=int(row[1]), held=int(row[2]))


async def mark_reached(
    conn: AsyncConnection, key_id: int, model: str, period: datetime | None, *, now: datetime
) -> bool:
    """Record that the cap was reported reached at `now`; False when it had been already in
    `period` (then nothing is written). One guarded UPDATE, so of two transactions reaching
    the cap at once exactly one reports it (the row is locked by `cap_state` on PostgreSQL)."""
    m = api_key_models.c
    untold: sa.ColumnElement[bool] = m.cap_reached_at.is_(None)
    if period is not None:  # a lifetime cap is reported once; a periodic one once a period
        untold = sa.or_(untold, m.cap_reached_at < period)
    marked = await conn.execute(
        sa.update(api_key_models)
        .where(m.key_id == key_id, m.model == model, untold)
        .values(cap_reached_at=as_utc(now))
    )
    return marked.rowcount == 1
