"""A key's total budget over every model: its period and the counters that enforce it.

Enforced exactly like a per-model cap (billing/quotas.py): the key's row keeps what was
settled in the current budget period and what calls in flight hold, and the hold that would
take `spent + held + amount` past the budget is refused in the transaction that places it,
the row locked meanwhile, so concurrent calls can never overshoot. Rows are locked wallet
first, then cap, then key, in every transaction that takes more than one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing.quotas import CapState, same_period
from bytespike.keys.tables import api_keys

_k = api_keys.c


async def state(conn: AsyncConnection, key_id: int, period: datetime | None) -> CapState | None:
    """The key's budget and its use in `period`; None without a budget. Locks the key's row
    on PostgreSQL until commit, so the room read is still there when it is taken."""
    query = sa.select(
        _k.budget_micros, _k.budget_period_start, _k.budget_spent_micros, _k.budget_held_micros
    ).where(_k.id == key_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    row = (await conn.execute(query)).one_or_none()
    if row is None or row[0] is None:
        return None
    spent = row[2] if same_period(row[1], period) else 0
    return CapState(cap=int(row[0]), spent=int(spent), held=int(row[3]))


async def hold(conn: AsyncConnection, key_id: int, amount: int) -> None:
    """Count a new hold against the budget (the caller checked the room under the lock)."""
    await conn.execute(
        sa.update(api_keys)
        .where(_k.id == key_id, _k.budget_micros.is_not(None))
        .values(budget_held_micros=_k.budget_held_micros + amount)
    )


async def unhold(
    conn: AsyncConnection,
    key_id: int | None,
    amount: int,
    *,
    charged: int = 0,
    period: datetime | None = None,
) -> None:
    """A hold ended: stop counting it, and count what it charged in `period`. A key whose
    budget was removed meanwhile keeps no counters (held is only ever counted with one)."""
    if key_id is None:
        return
    values: dict[str, Any] = {"budget_held_micros": less(_k.budget_held_micros, amount)}
    if charged:
        same = _k.budget_period_start.is_not_distinct_from(period)
        values["budget_spent_micros"] = sa.case(
            (same, _k.budget_spent_micros + charged), else_=charged
        )
        values["budget_period_start"] = period
    await conn.execute(
        sa.update(api_keys).where(_k.id == key_id, _k.budget_micros.is_not(None)).values(**values)
    )


def less(counter: sa.ColumnElement[int], amount: int) -> sa.ColumnElement[int]:
    """`counter - amount`, never below zero: a hold placed before the budget (or cap) was set
    was never counted, and must not drive the counter negative when it ends."""
    return sa.case((counter >= amount, counter - amount), else_=0)


def spent_in(period_start: datetime | None, stored_start: datetime | None, spent: int) -> int:
    """What the counters say was spent in the period starting `period_start`."""
    return spent if same_period(stored_start, period_start) else 0
