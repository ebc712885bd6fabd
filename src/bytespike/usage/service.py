"""GET /api/v1/me/usage: what the key's wallet spent, per day and model, and call by call.

Whoever manages the wallet (an individual, an org's owner or admin) sees every call paid
from it; an org member sees only the calls of their own keys.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bytespike.billing import payer
from bytespike.clock import iso_z
from bytespike.context import Context
from bytespike.db.metadata import stored_id
from bytespike.errors import InvalidRequest
from bytespike.keys import repo as keys_repo
from bytespike.keys.repo import KeyRecord
from bytespike.money import to_usd_number
from bytespike.usage import repo
from bytespike.usage.repo import DayTotal, Record

MAX_PAGE = 200


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


async def report(
    ctx: Context,
    key: KeyRecord,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: int | None,
) -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    # `until` is inclusive; its last day (9999-12-31) has no day after it, and needs no end.
    end = None if until is None or until.date() == date.max else until + timedelta(days=1)
    async with ctx.db.read() as conn:
        paying = await payer.resolve(conn, user_id=key.user_id, key_org_id=key.org_id)
        key_ids = None if paying.may_manage else await keys_repo.ids_of_user(conn, key.user_id)
        days = await repo.per_day_and_model(
            conn, paying.wallet_id, key_ids=key_ids, since=since, until=end
        )
        records = await repo.page(
            conn,
            paying.wallet_id,
            key_ids=key_ids,
            since=since,
            until=end,
            before_id=cursor,
            limit=limit + 1,
        )
    more = len(records) > limit
    records = records[:limit]
    return {
        "object": "usage",
        "scope": "wallet" if key_ids is None else "own_keys",
        "since": None if since is None else since.date().isoformat(),
        "until": None if until is None else until.date().isoformat(),
        "by_day": [_day(d) for d in days],
        "data": [_record(r) for r in records],
        "has_more": more,
        "next_cursor": str(records[-1].id) if more else None,
    }


def _day(total: DayTotal) -> dict[str, Any]:
    return {
        "date": total.day,
        "model": total.model,
        "requests": total.requests,
        "input_tokens": total.input_tokens,
        "output_tokens": total.output_tokens,
        "cached_tokens": total.cached_tokens,
        "cost_usd": to_usd_number(total.cost_micros),
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
    }
