"""SQL for stored responses: insert, read and delete one, by id and owner; delete the expired."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.db.direct import Many, hot
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


# Built once: one insert per stored response, on the group-commit writer. It returns 1 so
# that PostgreSQL's writer can also run it as an operation's fused form (db/batch.py's
# Fused), and KEEP_MANY is the same for a run of them (db/direct.py's Many): a batch's
# copies in one round trip and one commit, where each was an insert of their transaction.
KEEP = hot(sa.insert(t).returning(sa.literal_column("1", sa.Integer)))
KEEP_MANY = Many(
    """
WITH input AS (
    SELECT * FROM json_to_recordset($1::json)
        AS i(ord int8, id text, user_id int4, key_id int4, wallet_id int4, model text,
             input_items text, response text, created_at timestamptz)
), made AS (
    INSERT INTO stored_responses (id, user_id, key_id, wallet_id, model, input_items,
                                  response, created_at)
    SELECT id, user_id, key_id, wallet_id, model, input_items, response, created_at
    FROM input ORDER BY ord
)
SELECT 1 FROM input ORDER BY ord
""",
    ("id", "user_id", "key_id", "wallet_id", "model", "input_items", "response", "created_at"),
)


async def insert(conn: AsyncConnection, stored: Stored) -> None:
    await conn.execute(KEEP, asdict(stored))


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


async def expire_due(conn: AsyncConnection, *, before: datetime, limit: int = 500) -> int:
    """Delete up to `limit` of the responses stored before `before`, oldest first; how many.
    Safe to run in many processes: on PostgreSQL each skips the rows another is deleting."""
    oldest = sa.select(t.c.id).where(t.c.created_at < before).order_by(t.c.created_at)
    oldest = oldest.limit(limit)
    if conn.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    query = sa.delete(t).where(t.c.id.in_(oldest.scalar_subquery()))
    return int((await conn.execute(query)).rowcount)
