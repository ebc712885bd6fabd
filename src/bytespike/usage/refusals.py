"""Refused calls, counted per UTC day, key and reason (refusals_daily) for the reports.

Only calls whose key was recognised are counted: a 401 has no key to count against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.db.direct import hot
from bytespike.usage.rollups import day_of
from bytespike.usage.tables import refusals_daily

MAX_REASON = 64  # refusals_daily.reason's width


def _upsert(insert: Any) -> Any:
    statement = insert(refusals_daily)
    r = refusals_daily.c
    return hot(
        statement.on_conflict_do_update(
            index_elements=[r.day, r.key_id, r.reason],
            set_={"count": r.count + statement.excluded.count},
        )
    )


# Built once: a refusal can be as frequent as a call (a client hammering past its limit).
_UPSERT = {"sqlite": _upsert(sqlite.insert), "postgresql": _upsert(postgresql.insert)}


async def count_refusal(
    conn: AsyncConnection, *, key_id: int, wallet_id: int, reason: str, now: datetime
) -> None:
    """One more refused call of `key_id` for `reason` (an error code such as
    `rate_limited` or `insufficient_balance`) on `now`'s UTC day, in the caller's
    transaction. Batched callers pass `order=wallet_id` like the settlement's."""
    params = {
        "day": day_of(now),
        "key_id": key_id,
        "reason": reason[:MAX_REASON],
        "wallet_id": wallet_id,
        "count": 1,
    }
    await conn.execute(_UPSERT[conn.dialect.name], params)
