"""SQL for users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike import refs
from bytespike.accounts.tables import users
from bytespike.errors import InvalidRequest, NotFound
from bytespike.orgs.tables import memberships

User = sa.Row[int, str, str, str, datetime, datetime | None]

_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.email,
    users.c.tier,
    users.c.created_at,
    users.c.suspended_at,
)


class AmbiguousUser(InvalidRequest):
    """A plain reference that is one user's id and another user's username."""

    code = "ambiguous_user"


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


async def locked(conn: AsyncConnection, user_id: int) -> User:
    """The user, read afresh and held until the transaction ends (PostgreSQL; SQLite has one
    writer): two corrections of one user run one after the other."""
    query = sa.select(*_COLUMNS).where(users.c.id == user_id).with_for_update()
    return (await conn.execute(query)).one()


async def by_username(conn: AsyncConnection, username: str) -> User | None:
    query = sa.select(*_COLUMNS).where(users.c.username == username)
    return (await conn.execute(query)).one_or_none()


async def by_ref(conn: AsyncConnection, ref: str | int) -> User | None:
    """A user by `id:N`, `name:USERNAME`, or a plain id or username (bytespike/refs.py)."""
    return await refs.resolve(
        ref,
        kind="user",
        by_id=lambda user_id: by_id(conn, user_id),
        by_name=lambda name: by_username(conn, name),
        name_of=lambda user: str(user.username),
        ambiguous=AmbiguousUser,
    )


async def required(conn: AsyncConnection, ref: str | int) -> User:
    """`by_ref`, or 404."""
    found = await by_ref(conn, ref)
    if found is None:
        raise NotFound(f"no user {ref!r}")
    return found


async def page(
    conn: AsyncConnection, *, after: int | None, limit: int, org_id: int | None = None
) -> list[sa.Row[Any]]:
    """Up to `limit` users after id `after`, by id; only members of `org_id` (with their role)
    if given."""
    if org_id is None:
        query = sa.select(*_COLUMNS)
    else:
        m = memberships.c
        query = sa.select(*_COLUMNS, m.role).join_from(
            users, memberships, sa.and_(m.user_id == users.c.id, m.org_id == org_id)
        )
    query = query.order_by(users.c.id).limit(limit)
    if after is not None:
        query = query.where(users.c.id > after)
    return list(await conn.execute(query))


async def update(conn: AsyncConnection, user_id: int, **values: str) -> None:
    await conn.execute(sa.update(users).where(users.c.id == user_id).values(**values))


async def set_suspended(conn: AsyncConnection, user_id: int, at: datetime | None) -> bool:
    """Suspend (at a time) or unsuspend (None); False if the user was so already. One guarded
    UPDATE, so of two operators doing the same at once exactly one changes anything."""
    u = users.c
    changes = u.suspended_at.is_(None) if at is not None else u.suspended_at.is_not(None)
    result = await conn.execute(
        sa.update(users).where(u.id == user_id, changes).values(suspended_at=at)
    )
    return result.rowcount == 1
