"""The low-balance alert: when a wallet's owner is paged, and when the page re-arms.

The alert is armed while `available` is above the threshold. It fires once, and disarms,
when a debit or a raised threshold leaves `available` at or below the threshold. It re-arms
only when money comes in (a top-up or credit adjustment lifting `available` above the
threshold) or the threshold is moved below `available`. A released or expired hold does not
re-arm it, so requests whose holds dip below the threshold page the owner once, not each time.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing.tables import wallets

if TYPE_CHECKING:
    from bytespike.billing.ledger import Movement

_w = wallets.c


async def after_movement(
    conn: AsyncConnection,
    wallet_id: int,
    movement: Movement,
    after: sa.Row[int, int, bool],
    *,
    now: datetime,
) -> None:
    """Called by `ledger.post` with the wallet's state after the movement (no extra read)."""
    available, threshold, armed = after
    if armed and movement.available < 0 and available <= threshold:
        await _fire(conn, wallet_id, now)
    elif not armed and (movement.topped_up > 0 or movement.adjusted > 0) and available > threshold:
        await _arm(conn, wallet_id)


async def threshold_changed(conn: AsyncConnection, wallet_id: int, *, now: datetime) -> None:
    """Re-evaluate after the threshold moved: raising it over `available` is a crossing too."""
    available, threshold, armed = (
        await conn.execute(
            sa.select(
                _w.available_micros, _w.low_balance_threshold_micros, _w.low_balance_armed
            ).where(_w.id == wallet_id)
        )
    ).one()
    if available <= threshold and armed:
        await _fire(conn, wallet_id, now)
    elif available > threshold and not armed:
        await _arm(conn, wallet_id)


async def _arm(conn: AsyncConnection, wallet_id: int) -> None:
    await conn.execute(sa.update(wallets).where(_w.id == wallet_id).values(low_balance_armed=True))


async def _fire(conn: AsyncConnection, wallet_id: int, now: datetime) -> None:
    disarmed = await conn.execute(
        sa.update(wallets)
        .where(_w.id == wallet_id, _w.low_balance_armed == sa.true())
        .values(low_balance_armed=False)
    )
    if disarmed.rowcount == 1:  # exactly one transaction wins the crossing
        # Imported here: webhooks renders balances through billing, which imports this module.
        from bytespike.webhooks import events

        await events.balance_low(conn, wallet_id, now=now)
