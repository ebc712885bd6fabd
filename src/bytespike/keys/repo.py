"""SQL for API keys and their rosters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.keys.tables import api_key_models, api_keys
from bytespike.orgs.tables import orgs


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Everything a request needs to know about its key, read in one query."""

    id: int
    user_id: int
    org_id: int | None
    rate_limit: int
    quota_reset: str | None
    all_models: bool
    revoked: bool
    org_paused: bool


async def insert(
    conn: AsyncConnection,
    *,
    user_id: int,
    org_id: int | None,
    key_hash: str,
    prefix: str,
    name: str | None,
    rate_limit: int,
    quota_reset: str | None,
    roster: list[tuple[str, int | None]] | None,
    now: datetime,
) -> int:
    key_id = (
        await conn.execute(
            sa.insert(api_keys)
            .values(
                user_id=user_id,
                org_id=org_id,
                key_hash=key_hash,
                prefix=prefix,
                name=name,
                rate_limit=rate_limit,
                quota_reset=quota_reset,
                all_models=roster is None,
                created_at=now,
            )
            .returning(api_keys.c.id)
        )
    ).scalar_one()
    if roster:
        await conn.execute(
            sa.insert(api_key_models),
            [
                {"key_id": key_id, "model": model, "position": i, "cap_micros": cap}
                for i, (model, cap) in enumerate(roster)
            ],
        )
    return int(key_id)


async def by_hash(conn: AsyncConnection, key_hash: str) -> KeyRecord | None:
    k = api_keys.c
    row = (
        await conn.execute(
            sa.select(
                k.id,
                k.user_id,
                k.org_id,
                k.rate_limit,
                k.quota_reset,
                k.all_models,
                k.revoked_at.is_not(None),
                sa.func.coalesce(orgs.c.paused, sa.false()),
            )
            .select_from(api_keys.outerjoin(orgs, orgs.c.id == k.org_id))
            .where(k.key_hash == key_hash)
        )
    ).one_or_none()
    return None if row is None else KeyRecord(*row)


async def revoke(conn: AsyncConnection, key_id: int, now: datetime) -> bool:
    """Revoke once; False when the key does not exist or was revoked already."""
    k = api_keys.c
    result = await conn.execute(
        sa.update(api_keys).where(k.id == key_id, k.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount == 1


async def exists(conn: AsyncConnection, key_id: int) -> bool:
    query = sa.select(api_keys.c.id).where(api_keys.c.id == key_id)
    return (await conn.execute(query)).scalar_one_or_none() is not None


async def roster(conn: AsyncConnection, key_id: int) -> list[tuple[str, int | None]]:
    m = api_key_models.c
    query = sa.select(m.model, m.cap_micros).where(m.key_id == key_id).order_by(m.position)
    return [(model, cap) for model, cap in await conn.execute(query)]


async def ids_of_user(conn: AsyncConnection, user_id: int) -> list[int]:
    query = sa.select(api_keys.c.id).where(api_keys.c.user_id == user_id)
    return [int(key_id) for key_id in (await conn.execute(query)).scalars()]
