"""Per-key, per-model spend: quota periods and how much of a cap has been used.

Usage is read from the ledger itself (settlements carry key and model), so what the
account endpoint shows can never drift from what was charged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing.tables import ledger_entries
from bytespike.clock import as_utc


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
    """Micros this key has spent on each model since `since` (or ever)."""
    e = ledger_entries.c
    query = (
        sa.select(e.model, sa.func.sum(e.d_spent))
        .where(e.key_id == key_id, e.d_spent != 0)
        .group_by(e.model)
    )
    if since is not None:
        query = query.where(e.created_at >= since)
    rows = await conn.execute(query)
    return {model: int(total) for model, total in rows if model is not None}
