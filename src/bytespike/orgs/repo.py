"""SQL for orgs and memberships."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike import refs
from bytespike.accounts.tables import users
from bytespike.errors import InvalidRequest, NotFound
from bytespike.orgs.tables import memberships, orgs

Org = sa.Row[int, str, bool, datetime]

_COLUMNS = (orgs.c.id, orgs.c.name, orgs.c.paused, orgs.c.created_at)
ID_PREFIX, NAME_PREFIX = refs.ID_PREFIX, refs.NAME_PREFIX


class AmbiguousOrg(InvalidRequest):
    """A plain reference that is one org's id and another org's name."""

    code = "ambiguous_org"


async def insert(conn: AsyncConnection, *, name: str, now: datetime) -> int:
    result = await conn.execute(
        sa.insert(orgs).values(name=name, paused=False, created_at=now).returning(orgs.c.id)
    )
    return int(result.scalar_one())


async def by_ref(conn: AsyncConnection, ref: str | int) -> Org | None:
    """An org by `id:N`, `name:TEXT`, or a plain id or exact name (bytespike/refs.py)."""
    return await refs.resolve(
        ref,
        kind="org",
        by_id=lambda org_id: by_id(conn, org_id),
        by_name=lambda name: _by_name(conn, name),
        name_of=lambda org: str(org.name),
        ambiguous=AmbiguousOrg,
    )


async def required(conn: AsyncConnection, ref: str | int) -> Org:
    """`by_ref`, or 404."""
    found = await by_ref(conn, ref)
    if found is None:
        raise NotFound(f"no org {ref!r}")
    return found


async def _by_name(conn: AsyncConnection, name: str) -> Org | None:
    return (await conn.execute(sa.select(*_COLUMNS).where(orgs.c.name == name))).one_or_none()


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


async def lock(conn: AsyncConnection, org_id: int) -> None:
    """Hold the org's row until the transaction ends (PostgreSQL; SQLite has one writer), so
    two changes to its owners cannot each see another owner left and leave none together."""
    await conn.execute(sa.select(orgs.c.id).where(orgs.c.id == org_id).with_for_update())


async def rename(conn: AsyncConnection, org_id: int, name: str) -> None:
    await conn.execute(sa.update(orgs).where(orgs.c.id == org_id).values(name=name))


async def page(conn: AsyncConnection, *, after: int | None, limit: int) -> list[sa.Row[Any]]:
    """Up to `limit` orgs after id `after`, with their member counts, by id."""
    members = (
        sa.select(sa.func.count())
        .where(memberships.c.org_id == orgs.c.id)
        .scalar_subquery()
        .label("members")
    )
    query = sa.select(*_COLUMNS, members).order_by(orgs.c.id).limit(limit)
    if after is not None:
        query = query.where(orgs.c.id > after)
    return list(await conn.execute(query))


async def members(conn: AsyncConnection, org_id: int) -> list[sa.Row[Any]]:
    """The org's members (user id, username, role, joined), by user id."""
    m = memberships.c
    query = (
        sa.select(users.c.id, users.c.username, m.role, m.created_at)
        .join_from(memberships, users, users.c.id == m.user_id)
        .where(m.org_id == org_id)
        .order_by(users.c.id)
    )
    return list(await conn.execute(query))


async def of_user(conn: AsyncConnection, user_id: int) -> list[sa.Row[Any]]:
    """The orgs a user belongs to (org id, name, role, joined), in the order they joined."""
    m = memberships.c
    query = (
        sa.select(orgs.c.id, orgs.c.name, m.role, m.created_at)
        .join_from(memberships, orgs, orgs.c.id == m.org_id)
        .where(m.user_id == user_id)
        .order_by(m.created_at, m.org_id)
    )
    return list(await conn.execute(query))


async def owners(conn: AsyncConnection, org_id: int) -> int:
    m = memberships.c
    query = sa.select(sa.func.count()).where(m.org_id == org_id, m.role == "owner")
    return int((await conn.execute(query)).scalar_one())


async def delete_member(conn: AsyncConnection, *, org_id: int, user_id: int) -> None:
    m = memberships.c
    await conn.execute(sa.delete(memberships).where(m.org_id == org_id, m.user_id == user_id))
