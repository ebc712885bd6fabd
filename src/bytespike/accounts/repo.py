"""SQL for users."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts.tables import users

User = sa.Row[int, str, str, str, datetime]

_COLUMNS = (users.c.id, users.c.username, users.c.email, users.c.tier, users.c.created_at)


async def insert(
    conn: AsyncConnection, *, username: str, email: str, tier: str, now: datetime
) -> int:
    result = await conn.execute(
        sa.insert(users)
        .values(username=username, email=email, tier=tier, created_at=now)
        .returning(users.c.id)
    )
    return int(result.scalar_one())


async def by_id(conn: AsyncConnection, user_id: int) -> User | None:
    return (await conn.execute(sa.select(*_COLUMNS).where(users.c.id == user_id))).one_or_none()


async def by_username(conn: AsyncConnection, username: str) -> User | None:
    query = sa.select(*_COLUMNS).where(users.c.username == username)
    return (await conn.execute(query)).one_or_none()
