"""JSON shapes shared by the account endpoint, the admin API and the CLI's --json."""

from __future__ import annotations

from typing import Any

from bytespike.accounts.repo import User
from bytespike.billing.wallets import WalletView
from bytespike.clock import as_utc, iso_z
from bytespike.money import to_usd_number
from bytespike.orgs.repo import Org


def user(row: User) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username,
        "email": row.email,
        "created_at": iso_z(as_utc(row.created_at)),
        "tier": row.tier,
    }


def org(row: Org) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "paused": bool(row.paused),
        "created_at": iso_z(as_utc(row.created_at)),
    }


def balance(wallet: WalletView) -> dict[str, Any]:
    return {
        "available_usd": to_usd_number(wallet.available),
        "lifetime_topup_usd": to_usd_number(wallet.topped_up),
        "lifetime_spent_usd": to_usd_number(wallet.spent),
        "low_balance_threshold_usd": to_usd_number(wallet.threshold),
        "low_balance_flagged": wallet.low_balance_flagged,
    }


def usd_or_none(micros: int | None) -> float | None:
    return None if micros is None else to_usd_number(micros)


def user_status(row: User) -> dict[str, Any]:
    """A user as operators see them: with whether they are suspended, and since when."""
    suspended = row.suspended_at
    return {
        **user(row),
        "status": "active" if suspended is None else "suspended",
        "suspended_at": None if suspended is None else iso_z(as_utc(suspended)),
    }


def wallet(view: WalletView) -> dict[str, Any]:
    """A wallet's balance as operators see it: the key holder's view, plus money held by
    calls in flight and the wallet's id."""
    return {"id": view.id, **balance(view), "held_usd": to_usd_number(view.held)}
