"""Use cases behind /me/notifications: read and set the paying wallet's threshold."""

from __future__ import annotations

from typing import Any

from bytespike.accounts import views
from bytespike.billing import wallets
from bytespike.context import Context
from bytespike.keys.repo import KeyRecord
from bytespike.webhooks import owners


async def get(ctx: Context, key: KeyRecord) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        payer = await owners.payer(conn, key)
        return _shown(await wallets.view(conn, payer.wallet_id))


async def set_threshold(ctx: Context, key: KeyRecord, threshold: int) -> dict[str, Any]:
    """Org wallets need an owner or admin; billing.alerts decides whether the change pages."""
    async with ctx.db.write() as conn:
        payer = await owners.manager(conn, key)
        await wallets.set_threshold(conn, payer.wallet_id, threshold, now=ctx.clock.now())
        return _shown(await wallets.view(conn, payer.wallet_id))


def _shown(wallet: wallets.WalletView) -> dict[str, Any]:
    balance = views.balance(wallet)
    return {"low_balance_threshold_usd": balance["low_balance_threshold_usd"], "balance": balance}
