"""SQL for stored responses: insert, read and delete one, by id and owner."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.db.direct import hot
from bytespike.responses.tables import stored_responses as t


@dataclass(frozen=True, slots=True)
class Stored:
    id: str
    user_id: int
    key_id: int
    wallet_id: int
    model: str
    input_items: str  # JSON text
    response: str  # JSON text
    created_at: datetime


# Built once: one insert (and one purge) per stored response, on the group-commit writer.
_INSERT = hot(sa.insert(t))
_PURGE = hot(
    sa.delete(t).where(
        t.c.user_id == sa.bindparam("user_id"), t.c.created_at < sa.bindparam("before")
    )
)


async def insert(conn: AsyncConnection, stored: Stored) -> None:
    await conn.execute(_INSERT, asdict(stored))


async def get(
    conn: AsyncConnection, response_id: str, *, user_id: int, since: datetime
) -> Stored | None:
    """The response if this user owns it and it was stored at or after `since`."""
    query = sa.select(t).where(
        t.c.id == response_id, t.c.user_id == user_id, t.c.created_at >= since
    )
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else Stored(**row)


async def delete(conn: AsyncConnection, response_id: str, *, user_id: int, since: datetime) -> bool:
    query = sa.delete(t).where(
        t.c.id == response_id, t.c.user_id == user_id, t.c.created_at >= since
    )
    return bool((await conn.execute(query)).rowcount)


async def purge(conn: AsyncConnection, *, user_id: int, before: datetime) -> None:
    """Delete this user's responses stored before `before`."""
    await conn.execute(_PURGE, {"user_id": user_id, "before": before})
