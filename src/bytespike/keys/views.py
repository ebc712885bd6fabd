"""A key as operators and its holder see it: settings, state and spend; never a secret or
a hash (they are not even read: keys/repo.py's KeyRow has no such column)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bytespike.billing import budgets, quotas
from bytespike.clock import as_utc, iso_z
from bytespike.keys.repo import KeyRow
from bytespike.money import to_usd_number


def status(row: KeyRow, now: datetime) -> str:
    """active, revoked, expired or suspended (its user is), the first that applies."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and as_utc(row.expires_at) <= now:
        return "expired"
    if row.user_suspended:
        return "suspended"
    return "active"


def time(value: datetime | None) -> str | None:
    return None if value is None else iso_z(as_utc(value))


def key(
    row: KeyRow,
    *,
    roster: list[tuple[str, int | None]],
    spend: dict[str, int],
    lifetime: int,
    last_used: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """`roster` is (model, cap micros) in catalog order; `spend` what each model cost in the
    current quota period."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "user_id": row.user_id,
        "username": row.username,
        "org_id": row.org_id,
        "org": row.org_name,
        "status": status(row, now),
        "created_at": time(row.created_at),
        "updated_at": time(row.updated_at),
        "revoked_at": time(row.revoked_at),
        "expires_at": time(row.expires_at),
        "previous_secret_valid_until": time(
            row.previous_valid_until
            if row.previous_valid_until and as_utc(row.previous_valid_until) > now
            else None
        ),
        "last_used_at": time(last_used),
        "rate_limit_per_minute": row.rate_limit,
        "quota_reset": row.quota_reset,
        "models": [
            {
                "id": model,
                "quota_cap_usd": None if cap is None else to_usd_number(cap),
                "quota_used_usd": to_usd_number(spend.get(model, 0)),
            }
            for model, cap in roster
        ],
        "budget": budget(row, now),
        "spent_usd": to_usd_number(lifetime),
    }


def budget(row: KeyRow, now: datetime) -> dict[str, Any] | None:
    if row.budget_micros is None:
        return None
    period = quotas.period_start(row.budget_reset, now)
    spent = budgets.spent_in(period, row.budget_period_start, row.budget_spent_micros)
    return {
        "budget_usd": to_usd_number(row.budget_micros),
        "reset": row.budget_reset,
        "period_start": time(period),
        "spent_usd": to_usd_number(spent),
        "held_usd": to_usd_number(row.budget_held_micros),
        "remaining_usd": to_usd_number(max(0, row.budget_micros - spent - row.budget_held_micros)),
    }
