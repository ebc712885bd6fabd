"""SQL for the daily rollups: the upsert every usage record makes in its own transaction,
and the sums the reports and /me/usage read from them (never from usage_records).

A rollup row is (UTC day, wallet, key, model); refusals are (UTC day, key, reason) and carry
no model. Sums are integers: PostgreSQL's sum(bigint) is numeric, so each is cast back.

Failure policy: the upsert is part of the settlement's transaction (at the end of its
group-commit batch, once for the batch's calls of a row; or in the fused statement of a
call settled alone, billing/fused.py): if it fails, the settlement fails with it, so no
call is ever charged without being counted, nor counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts.tables import users
from bytespike.billing.tables import wallets
from bytespike.clock import as_utc
from bytespike.db.direct import hot
from bytespike.keys.tables import api_keys
from bytespike.orgs.tables import orgs
from bytespike.usage.tables import refusals_daily, usage_daily

# The counts a call adds to its day's row (also in billing/fused.py's statements).
SUMMED = ("requests", "input_tokens", "output_tokens", "cached_tokens", "cost_micros")


def _upsert(insert: Callable[[sa.Table], Any], latest: Callable[..., Any]) -> Any:
    """One call added to its day's row: a new row, or its counts added to the existing one."""
    statement = insert(usage_daily)
    d, new = usage_daily.c, statement.excluded
    added: dict[str, Any] = {name: d[name] + new[name] for name in SUMMED}
    return hot(
        statement.on_conflict_do_update(
            index_elements=[d.day, d.wallet_id, d.key_id, d.model],
            set_={**added, "last_at": latest(d.last_at, new.last_at)},
        )
    )


# Built once (one per metered call). SQLite's two-argument max() is its scalar maximum.
_UPSERT = {
    "sqlite": _upsert(sqlite.insert, sa.func.max),
    "postgresql": _upsert(postgresql.insert, sa.func.greatest),
}


def day_of(moment: datetime) -> date:
    """The UTC day a call counts on."""
    return as_utc(moment).date()


async def add(conn: AsyncConnection, record: dict[str, Any]) -> None:
    """Count a usage record (usage/repo.py's `row`) in its day's rollup, in the caller's
    transaction: in a group-commit batch, once for all of the batch's records of that day,
    key and model, as the batch ends (db/batch.py's Later)."""
    later = getattr(conn, "later", None)
    if later is not None:
        later(add_all, record)
    else:
        await add_all(conn, [record])


async def add_all(conn: AsyncConnection, records: list[dict[str, Any]]) -> None:
    """Count usage records in their days' rollups: one upsert per day, wallet, key and model,
    in that order (so two batches upserting the same rows take their locks in one order)."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        day = day_of(record["created_at"])
        group = (day, record["wallet_id"], record["key_id"], record["model"])
        row = rows.get(group)
        if row is None:
            rows[group] = {
                "day": day,
                "wallet_id": record["wallet_id"],
                "key_id": record["key_id"],
                "model": record["model"],
                "requests": 1,
                **{name: record[name] for name in SUMMED[1:]},
                "last_at": record["created_at"],
            }
            continue
        row["requests"] += 1
        for name in SUMMED[1:]:
            row[name] += record[name]
        row["last_at"] = max(row["last_at"], record["created_at"])
    upsert = _UPSERT[conn.dialect.name]
    for group in sorted(rows):
        await conn.execute(upsert, rows[group])


@dataclass(frozen=True, slots=True)
class Scope:
    """Which rollup rows count: UTC days from `since` to `until` (inclusive; None: no
    bound), and optional filters, all of which must hold."""

    since: date | None = None
    until: date | None = None
    wallet_id: int | None = None
    user_id: int | None = None  # that user's keys
    key_ids: Sequence[int] | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Sums:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_micros: int = 0

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cost_micros + other.cost_micros,
        )


def _where(query: Any, table: sa.Table, scope: Scope) -> Any:
    c = table.c
    if scope.since is not None:
        query = query.where(c.day >= scope.since)
    if scope.until is not None:
        query = query.where(c.day <= scope.until)
    if scope.wallet_id is not None:
        query = query.where(c.wallet_id == scope.wallet_id)
    if scope.user_id is not None:
        keys_of_user = sa.select(api_keys.c.id).where(api_keys.c.user_id == scope.user_id)
        query = query.where(c.key_id.in_(keys_of_user))
    if scope.key_ids is not None:
        query = query.where(c.key_id.in_(scope.key_ids))
    if scope.model is not None:  # usage_daily's: refusals have no model (`refusals_by`)
        query = query.where(c.model == scope.model)
    return query


def _sums() -> list[sa.ColumnElement[Any]]:
    return [sa.cast(sa.func.sum(usage_daily.c[name]), sa.BigInteger) for name in SUMMED]


def _as_sums(row: Sequence[Any]) -> Sums:
    return Sums(*(int(value) for value in row))


def _labelled(grain: str, grouped: sa.Subquery) -> sa.Select[Any]:
    """The sums grouped by `grain`, and what names each group, joined after grouping (once
    per key or wallet, not per rollup row): a key's name, prefix, user id and username; a
    wallet's org id and name (NULL for an individual's); a model or day names itself."""
    g = grouped.c
    if grain == "key":
        k = api_keys.c
        return sa.select(*g, k.name, k.prefix, k.user_id, users.c.username).select_from(
            grouped.join(api_keys, k.id == g.grain).join(users, users.c.id == k.user_id)
        )
    if grain == "wallet":
        return sa.select(*g, wallets.c.org_id, orgs.c.name).select_from(
            grouped.join(wallets, wallets.c.id == g.grain).outerjoin(
                orgs, orgs.c.id == wallets.c.org_id
            )
        )
    return sa.select(*g)


def _grain_column(table: sa.Table, grain: str) -> sa.ColumnElement[Any]:
    return table.c[{"key": "key_id", "wallet": "wallet_id"}.get(grain, grain)]


async def usage_by(
    conn: AsyncConnection, grain: str, scope: Scope
) -> list[tuple[Sequence[Any], Sums]]:
    """Sums per `grain` ("key", "wallet", "model" or "day"): (the group and its labels,
    its sums)."""
    column = _grain_column(usage_daily, grain)
    grouped = _where(sa.select(column.label("grain"), *_sums()), usage_daily, scope)
    query = _labelled(grain, grouped.group_by(column).subquery())
    width = len(SUMMED)
    return [
        ((row[0], *row[1 + width :]), _as_sums(row[1 : 1 + width]))
        for row in await conn.execute(query)
    ]


async def refusals_by(
    conn: AsyncConnection, grain: str, scope: Scope
) -> list[tuple[Sequence[Any], str, int]]:
    """Refused calls per `grain` and reason: (the group and its labels, reason, count).
    Refusals carry no model: by "model" they are all one group (None), and a model filter
    leaves none."""
    if scope.model is not None:
        return []
    r = refusals_daily.c
    whole = grain == "model"
    column = sa.null() if whole else _grain_column(refusals_daily, grain)
    total = sa.cast(sa.func.sum(r.count), sa.BigInteger)
    grouped = _where(sa.select(column.label("grain"), r.reason, total), refusals_daily, scope)
    grouped = grouped.group_by(r.reason) if whole else grouped.group_by(column, r.reason)
    query = _labelled(grain, grouped.subquery())
    return [((row[0], *row[3:]), str(row[1]), int(row[2])) for row in await conn.execute(query)]


@dataclass(frozen=True, slots=True)
class DayTotal:
    day: str  # YYYY-MM-DD, UTC
    model: str
    sums: Sums


async def per_day_and_model(conn: AsyncConnection, scope: Scope) -> list[DayTotal]:
    """Sums per UTC day and model, newest day first."""
    d = usage_daily.c
    query = _where(sa.select(d.day, d.model, *_sums()), usage_daily, scope)
    query = query.group_by(d.day, d.model).order_by(d.day.desc(), d.model)
    return [
        DayTotal(row[0].isoformat(), str(row[1]), _as_sums(row[2:]))
        for row in await conn.execute(query)
    ]
