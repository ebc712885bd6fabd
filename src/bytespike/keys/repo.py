"""SQL for API keys and their rosters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts.tables import users
from bytespike.keys.tables import api_key_models, api_keys
from bytespike.orgs.tables import orgs
from bytespike.usage.tables import usage_daily


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
    version: int  # what the record says is current as of `version` (keys/tables.py)
    suspended: bool  # its user is suspended
    expires_at: datetime | None  # the key's own expiry, or its previous secret's grace end
    budgeted: bool  # it has a total budget, enforced through the hold
    budget_reset: str | None
    previous: bool = False  # presented with its previous secret, in a roll's grace period


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


def _record_query(previous: sa.ColumnElement[bool]) -> sa.Select[Any]:
    k = api_keys.c
    return sa.select(
        k.id,
        k.user_id,
        k.org_id,
        k.rate_limit,
        k.quota_reset,
        k.all_models,
        k.revoked_at.is_not(None),
        sa.func.coalesce(orgs.c.paused, sa.false()),
        k.version,
        users.c.suspended_at.is_not(None),
        k.expires_at,
        k.budget_micros.is_not(None),
        k.budget_reset,
        previous,
        k.previous_valid_until,
    ).select_from(
        api_keys.join(users, users.c.id == k.user_id).outerjoin(orgs, orgs.c.id == k.org_id)
    )


async def by_hash(conn: AsyncConnection, key_hash: str) -> KeyRecord | None:
    """The key presented as `key_hash`: its current secret, or its previous one while a roll's
    grace lasts (then `expires_at` is when that grace ends, if sooner than the key's own)."""
    k = api_keys.c
    previous = k.previous_key_hash == key_hash
    query = _record_query(previous).where(sa.or_(k.key_hash == key_hash, previous))
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    *fields, by_previous, grace_end = row
    record = KeyRecord(*fields)
    if by_previous:
        ends = [t for t in (record.expires_at, grace_end) if t is not None]
        record = dataclasses.replace(record, expires_at=min(ends) if ends else None, previous=True)
    return record


async def by_id(conn: AsyncConnection, key_id: int) -> KeyRecord | None:
    """The key as its current secret would present it (the console's key selector)."""
    query = _record_query(sa.false()).where(api_keys.c.id == key_id)
    row = (await conn.execute(query)).first()
    return None if row is None else KeyRecord(*row[:-2])


async def revoke(conn: AsyncConnection, key_id: int, now: datetime) -> bool:
    """Revoke once; False when the key does not exist or was revoked already."""
    k = api_keys.c
    result = await conn.execute(
        sa.update(api_keys).where(k.id == key_id, k.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount == 1


async def revoke_in_org(
    conn: AsyncConnection, *, user_id: int, org_id: int, now: datetime
) -> list[int]:
    """Revoke the user's live keys created in the org; their ids."""
    k = api_keys.c
    result = await conn.execute(
        sa.update(api_keys)
        .where(k.user_id == user_id, k.org_id == org_id, k.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(k.id)
    )
    return sorted(int(key_id) for key_id in result.scalars())


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


# The operator's read side: every column but the hashes, with the owner's and org's names.
@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    user_id: int
    username: str
    user_suspended: bool
    org_id: int | None
    org_name: str | None
    prefix: str
    name: str | None
    rate_limit: int
    quota_reset: str | None
    all_models: bool
    created_at: datetime
    revoked_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None
    previous_valid_until: datetime | None
    budget_micros: int | None
    budget_reset: str | None
    budget_period_start: datetime | None
    budget_spent_micros: int
    budget_held_micros: int


def _rows_query() -> sa.Select[Any]:
    k = api_keys.c
    return sa.select(
        k.id,
        k.user_id,
        users.c.username,
        users.c.suspended_at.is_not(None),
        k.org_id,
        orgs.c.name,
        k.prefix,
        k.name,
        k.rate_limit,
        k.quota_reset,
        k.all_models,
        k.created_at,
        k.revoked_at,
        k.updated_at,
        k.expires_at,
        k.previous_valid_until,
        k.budget_micros,
        k.budget_reset,
        k.budget_period_start,
        k.budget_spent_micros,
        k.budget_held_micros,
    ).select_from(
        api_keys.join(users, users.c.id == k.user_id).outerjoin(orgs, orgs.c.id == k.org_id)
    )


async def row(conn: AsyncConnection, key_id: int) -> KeyRow | None:
    found = (await conn.execute(_rows_query().where(api_keys.c.id == key_id))).one_or_none()
    return None if found is None else KeyRow(*found)


async def rows(
    conn: AsyncConnection,
    *,
    user_id: int | None,
    org_id: int | None,
    revoked: bool,
    after_id: int | None,
    limit: int,
) -> list[KeyRow]:
    """Keys by id; revoked ones only when `revoked`."""
    k = api_keys.c
    query = _rows_query()
    if user_id is not None:
        query = query.where(k.user_id == user_id)
    if org_id is not None:
        query = query.where(k.org_id == org_id)
    if not revoked:
        query = query.where(k.revoked_at.is_(None))
    if after_id is not None:
        query = query.where(k.id > after_id)
    return [KeyRow(*r) for r in await conn.execute(query.order_by(k.id).limit(limit))]


async def rosters(
    conn: AsyncConnection, key_ids: list[int]
) -> dict[int, list[tuple[str, int | None]]]:
    """Explicit rosters (model, cap) of these keys; keys with the whole catalog have none."""
    m = api_key_models.c
    query = (
        sa.select(m.key_id, m.model, m.cap_micros)
        .where(m.key_id.in_(key_ids))
        .order_by(m.key_id, m.position)
    )
    found: dict[int, list[tuple[str, int | None]]] = {}
    for key_id, model, cap in await conn.execute(query):
        found.setdefault(int(key_id), []).append((model, cap))
    return found


async def spend_by_model(conn: AsyncConnection, key_id: int, since: date | None) -> dict[str, int]:
    """What the key spent per model since the UTC day `since` (or ever), from the rollups."""
    d = usage_daily.c
    query = sa.select(d.model, sa.func.sum(d.cost_micros)).where(d.key_id == key_id)
    if since is not None:
        query = query.where(d.day >= since)
    return {m: int(t) for m, t in await conn.execute(query.group_by(d.model))}


async def spend_by_key_and_model(
    conn: AsyncConnection, key_ids: list[int], since: date | None
) -> dict[int, dict[str, int]]:
    """`spend_by_model` of several keys at once: per key, per model, from the rollups."""
    d = usage_daily.c
    query = sa.select(d.key_id, d.model, sa.func.sum(d.cost_micros)).where(d.key_id.in_(key_ids))
    if since is not None:
        query = query.where(d.day >= since)
    found: dict[int, dict[str, int]] = {}
    for key_id, model, total in await conn.execute(query.group_by(d.key_id, d.model)):
        found.setdefault(int(key_id), {})[model] = int(total)
    return found


async def usage_totals(
    conn: AsyncConnection, key_ids: list[int]
) -> dict[int, tuple[int, datetime | None]]:
    """Per key: lifetime spend and the time of its last metered call, from the rollups."""
    d = usage_daily.c
    query = (
        sa.select(d.key_id, sa.func.sum(d.cost_micros), sa.func.max(d.last_at))
        .where(d.key_id.in_(key_ids))
        .group_by(d.key_id)
    )
    return {int(k): (int(spent), last) for k, spent, last in await conn.execute(query)}


async def update(conn: AsyncConnection, key_id: int, values: dict[str, Any], now: datetime) -> None:
    """Change a key's columns and bump its version, so cached copies everywhere notice."""
    k = api_keys.c
    await conn.execute(
        sa.update(api_keys)
        .where(k.id == key_id)
        .values(**values, version=k.version + 1, updated_at=now)
    )


async def replace_roster(
    conn: AsyncConnection, key_id: int, roster: list[tuple[str, int | None]]
) -> None:
    """Set the key's roster to `roster` (in order), keeping the counters of models that stay:
    their caps' spend this period and money in flight."""
    m = api_key_models.c
    kept = [model for model, _ in roster]
    await conn.execute(sa.delete(api_key_models).where(m.key_id == key_id, m.model.not_in(kept)))
    existing = set((await conn.execute(sa.select(m.model).where(m.key_id == key_id))).scalars())
    for position, (model, cap) in enumerate(roster):
        if model in existing:
            await conn.execute(
                sa.update(api_key_models)
                .where(m.key_id == key_id, m.model == model)
                .values(position=position, cap_micros=cap)
            )
        else:
            await conn.execute(
                sa.insert(api_key_models).values(
                    key_id=key_id, model=model, position=position, cap_micros=cap
                )
            )
    await conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(all_models=False))


async def roll(
    conn: AsyncConnection,
    key_id: int,
    *,
    new_hash: str,
    prefix: str,
    grace_until: datetime | None,
    now: datetime,
) -> None:
    """Give the key a new secret; the current one stays valid until `grace_until` (None: not
    at all). A previous secret still in its grace period is dropped."""
    k = api_keys.c
    await conn.execute(
        sa.update(api_keys)
        .where(k.id == key_id)
        .values(
            previous_key_hash=k.key_hash if grace_until is not None else None,
            previous_valid_until=grace_until,
            key_hash=new_hash,
            prefix=prefix,
            version=k.version + 1,
            updated_at=now,
        )
    )


async def bump_versions(
    conn: AsyncConnection,
    *,
    user_id: int,
    org_id: int | None = None,
    without_org: bool = False,
    now: datetime,
) -> int:
    """Mark a user's keys as changed, so every process holding a cached copy reads them anew:
    all of them, or only those created in `org_id` (and, `without_org`, those created in no
    org, which bill the user's oldest org). How many keys that was."""
    k = api_keys.c
    which = [k.user_id == user_id]
    if org_id is not None:
        which.append(
            sa.or_(k.org_id == org_id, k.org_id.is_(None)) if without_org else k.org_id == org_id
        )
    result = await conn.execute(
        sa.update(api_keys).where(*which).values(version=k.version + 1, updated_at=now)
    )
    return int(result.rowcount)


async def counts_of_user(conn: AsyncConnection, user_id: int, now: datetime) -> dict[str, int]:
    """A user's keys by their own state: active, revoked, or expired (and not revoked)."""
    k = api_keys.c
    revoked = k.revoked_at.is_not(None)
    expired = sa.and_(k.revoked_at.is_(None), k.expires_at.is_not(None), k.expires_at <= now)

    def how_many(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    query = sa.select(sa.func.count(), how_many(revoked), how_many(expired)).where(
        k.user_id == user_id
    )
    total, revoked_n, expired_n = (await conn.execute(query)).one()
    return {
        "active": int(total) - int(revoked_n) - int(expired_n),
        "revoked": int(revoked_n),
        "expired": int(expired_n),
    }
