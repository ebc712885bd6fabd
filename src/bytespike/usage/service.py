"""GET /api/v1/me/usage: what the key's wallet spent, per day and model, and call by call.

Whoever manages the wallet (an individual, an org's owner or admin) sees every call paid
from it and may narrow it to one user; an org member sees only the calls of their own keys,
and asking for another user's (or another user's key) is refused (403). The totals per day
come from the daily rollups; the calls themselves from the usage records.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts import repo as users_repo
from bytespike.billing import payer
from bytespike.billing.payer import Payer
from bytespike.clock import iso_z
from bytespike.context import Context
from bytespike.db.metadata import stored_id
from bytespike.errors import InvalidRequest, NotFound, PermissionDenied
from bytespike.keys import repo as keys_repo
from bytespike.keys.repo import KeyRecord
from bytespike.keys.tables import api_keys
from bytespike.money import to_usd_number, to_usd_text
from bytespike.orgs import repo as orgs_repo
from bytespike.usage import receipts, repo, rollups
from bytespike.usage.repo import Record
from bytespike.usage.rollups import DayTotal, Scope

MAX_PAGE = 200
MAX_CSV_PAGE = 10_000  # an export: fewer round trips for the same calls
FORMATS = ("json", "csv")
CSV_FIELDS = (
    "id", "created_at", "key_id", "model", "provider", "status", "http_status", "stream",
    "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "latency_ms", "request_id",
)  # fmt: skip


def parse_day(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be a date like 2026-03-10") from exc


def parse_cursor(value: str | None) -> int | None:
    """A cursor is a usage record's id; anything else ("²", past BIGINT) was never handed out."""
    if value is None:
        return None
    cursor = stored_id(value, big=True)
    if cursor is None:
        raise InvalidRequest("cursor must be the next_cursor of a previous page")
    return cursor


def parse_key_id(value: str | None) -> int | None:
    if value is None:
        return None
    key_id = stored_id(value)
    if key_id is None:
        raise InvalidRequest("key_id must be a key's id, a whole number")
    return key_id


@dataclass(frozen=True, slots=True)
class Query:
    """What /me/usage was asked: days (inclusive, UTC midnight), filters and the page."""

    since: datetime | None = None
    until: datetime | None = None
    key_id: int | None = None
    model: str | None = None
    user: str | None = None
    limit: int = 50
    cursor: int | None = None
    format: str = "json"

    def check(self) -> None:
        if self.format not in FORMATS:
            raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
        most = MAX_CSV_PAGE if self.format == "csv" else MAX_PAGE
        if not 1 <= self.limit <= most:
            raise InvalidRequest(f"limit must be between 1 and {most}")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidRequest(
                f"since ({self.since.date()}) is after until ({self.until.date()})"
            )


@dataclass(frozen=True, slots=True)
class Usage:
    """The days' totals and one page of calls."""

    scope: str  # "wallet", or "own_keys" for an org member
    query: Query
    days: list[DayTotal]
    records: list[Record]
    next_cursor: str | None


async def usage(
    ctx: Context, key: KeyRecord, query: Query, *, span: tuple[date, date] | None = None
) -> Usage:
    """The query's days and page of calls. `span` (first, last day), if given, bounds the
    days instead: the console sums a month beside the latest calls, whatever their day,
    and so reads a month of rollups however old the wallet is."""
    query.check()
    since, until = query.since, query.until
    # `until` is inclusive; its last day (9999-12-31) has no day after it, and needs no end.
    end = None if until is None or until.date() == date.max else until + timedelta(days=1)
    first, last = span or (
        None if since is None else since.date(),
        None if until is None else until.date(),
    )
    async with ctx.db.read() as conn:
        paying = await payer.resolve(conn, user_id=key.user_id, key_org_id=key.org_id)
        key_ids = await _key_ids(conn, paying, query)
        scope = Scope(
            since=first,
            until=last,
            wallet_id=paying.wallet_id,
            key_ids=key_ids,
            model=query.model,
        )
        days = await rollups.per_day_and_model(conn, scope)
        records = await repo.page(
            conn,
            paying.wallet_id,
            key_ids=key_ids,
            model=query.model,
            since=since,
            until=end,
            before_id=query.cursor,
            limit=query.limit + 1,
        )
    more = len(records) > query.limit
    records = records[: query.limit]
    return Usage(
        scope="wallet" if paying.may_manage else "own_keys",
        query=query,
        days=days,
        records=records,
        next_cursor=str(records[-1].id) if more else None,
    )


async def receipt(ctx: Context, key: KeyRecord, record_id: str) -> dict[str, Any]:
    """One call's receipt (usage/receipts.py): the wallet's managers see any call paid from
    it, an org member only the calls of their own keys; any other id is 404."""
    found_id = stored_id(record_id, big=True)
    async with ctx.db.read() as conn:
        paying = await payer.resolve(conn, user_id=key.user_id, key_org_id=key.org_id)
        found = None if found_id is None else await receipts.find(conn, paying.wallet_id, found_id)
        if found is not None and not paying.may_manage:
            own = await keys_repo.ids_of_user(conn, paying.user.id)
            found = found if found.record.key_id in own else None
    if found is None:
        raise NotFound(f"no call {record_id[:64]!r} was paid from this wallet")
    return receipts.as_json(found)


async def _key_ids(conn: AsyncConnection, paying: Payer, query: Query) -> list[int] | None:
    """The keys whose calls count (None: every call paid from the wallet), or 403/404."""
    caller = paying.user.id
    key_ids = None if paying.may_manage else await keys_repo.ids_of_user(conn, caller)
    if query.user is not None:
        user_id = await _user_of_wallet(conn, paying, query.user)
        key_ids = await keys_repo.ids_of_user(conn, user_id)
    if query.key_id is not None:
        if key_ids is not None and query.key_id not in key_ids and not paying.may_manage:
            raise PermissionDenied("an org member sees only the usage of their own keys")
        key_ids = [query.key_id] if key_ids is None or query.key_id in key_ids else []
    return key_ids


async def _user_of_wallet(conn: AsyncConnection, paying: Payer, ref: str) -> int:
    """The user `ref` names, if the caller may see their usage: themselves, or for a
    manager of an org's wallet, one of its members or a holder of one of its keys. Anyone
    else is 404 whether or not they exist, so no one learns who else uses bytespike."""
    found = await users_repo.by_ref(conn, ref)
    if found is not None and found.id == paying.user.id:
        return int(found.id)
    if not paying.may_manage:
        raise PermissionDenied("only the wallet's owners and admins see other users' usage")
    org_id = paying.org_id if paying.billed_to_org else None
    if found is not None and org_id is not None and await _uses_org(conn, org_id, found.id):
        return int(found.id)
    raise NotFound(f"no user {ref[:64]!r} uses this wallet")


async def _uses_org(conn: AsyncConnection, org_id: int, user_id: int) -> bool:
    if await orgs_repo.role_of(conn, org_id=org_id, user_id=user_id) is not None:
        return True
    k = api_keys.c
    query = sa.select(k.id).where(k.org_id == org_id, k.user_id == user_id).limit(1)
    return (await conn.execute(query)).first() is not None


def as_json(found: Usage) -> dict[str, Any]:
    since, until = found.query.since, found.query.until
    return {
        "object": "usage",
        "scope": found.scope,
        "since": None if since is None else since.date().isoformat(),
        "until": None if until is None else until.date().isoformat(),
        "by_day": [_day(d) for d in found.days],
        "data": [_record(r) for r in found.records],
        "has_more": found.next_cursor is not None,
        "next_cursor": found.next_cursor,
    }


def as_csv(found: Usage) -> str:
    """The page of calls, a header row first (cost as exact decimal USD text)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for record in found.records:
        row = _record(record) | {
            "cost_usd": to_usd_text(record.cost_micros),
            "stream": "true" if record.stream else "false",
        }
        writer.writerow([row[name] for name in CSV_FIELDS])
    return out.getvalue()


def _day(total: DayTotal) -> dict[str, Any]:
    sums = total.sums
    return {
        "date": total.day,
        "model": total.model,
        "requests": sums.requests,
        "input_tokens": sums.input_tokens,
        "output_tokens": sums.output_tokens,
        "cached_tokens": sums.cached_tokens,
        "cost_usd": to_usd_number(sums.cost_micros),
    }


def _record(record: Record) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "key_id": record.key_id,
        "model": record.model,
        "provider": record.provider,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cached_tokens": record.cached_tokens,
        "cost_usd": to_usd_number(record.cost_micros),
        "status": record.status,
        "http_status": record.http_status,
        "stream": record.stream,
        "latency_ms": record.latency_ms,
        "created_at": iso_z(record.created_at),
        "request_id": record.request_id,
    }
