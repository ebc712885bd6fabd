"""SQL for idempotency claims: claim a key (or claim anew one whose row expired), read it,
answer or release it, delete the expired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.idempotency.tables import idempotency_keys as t


@dataclass(frozen=True, slots=True)
class Found:
    """A claim found in place: what it was for and how far it got."""

    fingerprint: str
    state: str
    status: int | None
    content_type: str | None
    answer: bytes | None
    request_id: str | None


def _insert(insert: Any) -> Any:
    return insert(t).on_conflict_do_nothing(index_elements=[t.c.key_id, t.c.idempotency_key])


# Built once. Conflicts do nothing rather than fail: the claim runs in a batched
# transaction, which an expected outcome (the key is taken) must not abort.
_CLAIM = {"sqlite": _insert(sqlite.insert), "postgresql": _insert(postgresql.insert)}
_FOUND = (t.c.fingerprint, t.c.state, t.c.status, t.c.content_type, t.c.answer, t.c.request_id)


def _row(key_id: int, idempotency_key: str) -> sa.ColumnElement[bool]:
    return sa.and_(t.c.key_id == key_id, t.c.idempotency_key == idempotency_key)


async def claim(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Insert a `running` row; False if the key has one already."""
    result = await conn.execute(_CLAIM[conn.dialect.name], row)
    return bool(result.rowcount)


async def claim_expired(conn: AsyncConnection, row: dict[str, Any], *, now: datetime) -> bool:
    """Make an expired row `row` (a call that died, an answer past its retention); False
    if the key's row has not expired."""
    fields = {k: v for k, v in row.items() if k not in ("key_id", "idempotency_key")}
    fields |= {"status": None, "content_type": None, "answer": None}
    query = (
        sa.update(t)
        .where(_row(row["key_id"], row["idempotency_key"]), t.c.expires_at <= now)
        .values(**fields)
    )
    return bool((await conn.execute(query)).rowcount)


async def get(conn: AsyncConnection, key_id: int, idempotency_key: str) -> Found | None:
    query = sa.select(*_FOUND).where(_row(key_id, idempotency_key))
    found = (await conn.execute(query)).mappings().first()
    return None if found is None else Found(**found)


async def finish(
    conn: AsyncConnection,
    key_id: int,
    idempotency_key: str,
    token: str,
    **fields: Any,
) -> bool:
    """Set `fields` on the claim if `token` still holds it; False if it does not."""
    query = sa.update(t).where(_row(key_id, idempotency_key), t.c.token == token).values(**fields)
    return bool((await conn.execute(query)).rowcount)


async def release(conn: AsyncConnection, key_id: int, idempotency_key: str, token: str) -> bool:
    """Delete the claim if `token` still holds it."""
    query = sa.delete(t).where(_row(key_id, idempotency_key), t.c.token == token)
    return bool((await conn.execute(query)).rowcount)


async def expire_due(conn: AsyncConnection, *, now: datetime) -> int:
    """Delete every row expired at `now`; how many."""
    return int((await conn.execute(sa.delete(t).where(t.c.expires_at <= now))).rowcount)
