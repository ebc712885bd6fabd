"""The low-balance alert: when a wallet's owner is paged, and when the page re-arms.

The alert follows settled money, "settled available": `available + held`, which is top-ups
and adjustments less spend. A hold only moves money from `available` to `held`, and a release
or an expiry moves it back, so neither changes settled available.

The alert is armed while settled available is above the threshold. It fires once, and
disarms, when a debit (a hold or a settlement) leaves settled available at or below the
threshold while armed, or when the threshold is raised to or over it. It re-arms when money
comes in (a top-up or credit adjustment lifting settled available above the threshold) or the
threshold is moved below it. So a hold that dips `available` below the threshold and is
released a moment later pages nobody. `billing/fused.py` keeps the same rule: its statements
leave every debit that pages to the general path.
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
    """Called by `ledger.post` with the wallet's settled available, threshold and armed flag
    after the movement (returned by its UPDATE: no extra read)."""
    settled, threshold, armed = after
    if armed and _debits(movement) and settled <= threshold:
        await _fire(conn, wallet_id, now)
    elif not armed and (movement.topped_up > 0 or movement.adjusted > 0) and settled > threshold:
        await _arm(conn, wallet_id)


def _debits(movement: Movement) -> bool:
    """A hold, a charge or a debit adjustment; not a release, an expiry or a free settlement."""
    return movement.available < 0 or movement.spent > 0


async def threshold_changed(conn: AsyncConnection, wallet_id: int, *, now: datetime) -> None:
    """Re-evaluate after the threshold moved: raising it to or over settled available is a
    crossing too."""
    settled, threshold, armed = (
        await conn.execute(
            sa.select(
                _w.available_micros + _w.held_micros,
                _w.low_balance_threshold_micros,
                _w.low_balance_armed,
            ).where(_w.id == wallet_id)
        )
    ).one()
    if settled <= threshold and armed:
        await _fire(conn, wallet_id, now)
    elif settled > threshold and not armed:
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
