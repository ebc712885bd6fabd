"""SQL for orgs and memberships."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.orgs.tables import memberships, orgs

Org = sa.Row[int, str, bool, datetime]

_COLUMNS = (orgs.c.id, orgs.c.name, orgs.c.paused, orgs.c.created_at)


async def insert(conn: AsyncConnection, *, name: str, now: datetime) -> int:
    result = await conn.execute(
        sa.insert(orgs).values(name=name, paused=False, created_at=now).returning(orgs.c.id)
    )
    return int(result.scalar_one())


async def by_ref(conn: AsyncConnection, ref: str | int) -> Org | None:
    """An org by id or by exact name (an all-digit name is looked up as a name too)."""
    text = str(ref)
    condition = orgs.c.name == text
    if text.isdigit():
        condition = sa.or_(orgs.c.id == int(text), condition)
    rows = (await conn.execute(sa.select(*_COLUMNS).where(condition).order_by(orgs.c.id))).all()
    return rows[0] if rows else None


async def by_id(conn: AsyncConnection, org_id: int) -> Org | None:
    return (await conn.execute(sa.select(*_COLUMNS).where(orgs.c.id == org_id))).one_or_none()


async def set_paused(conn: AsyncConnection, org_id: int, paused: bool) -> None:
    await conn.execute(sa.update(orgs).where(orgs.c.id == org_id).values(paused=paused))


async def upsert_member(
    conn: AsyncConnection, *, org_id: int, user_id: int, role: str, now: datetime
) -> None:
    m = memberships.c
    updated = await conn.execute(
        sa.update(memberships).where(m.org_id == org_id, m.user_id == user_id).values(role=role)
    )
    if updated.rowcount == 0:
        await conn.execute(
            sa.insert(memberships).values(org_id=org_id, user_id=user_id, role=role, created_at=now)
        )


async def role_of(conn: AsyncConnection, *, org_id: int, user_id: int) -> str | None:
    m = memberships.c
    query = sa.select(m.role).where(m.org_id == org_id, m.user_id == user_id)
    return (await conn.execute(query)).scalar_one_or_none()


async def oldest_membership(conn: AsyncConnection, user_id: int) -> int | None:
    """The org the user joined first: the default org of a key made outside any org."""
    m = memberships.c
    query = (
        sa.select(m.org_id).where(m.user_id == user_id).order_by(m.created_at, m.org_id).limit(1)
    )
    return (await conn.execute(query)).scalar_one_or_none()
