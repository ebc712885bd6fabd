"""Pending holds: reserve money before an upstream call, then settle the real cost or release.

A hold moves money from `available` to `held`, so concurrent requests can never spend the
same dollar twice. Each hold ends exactly once (settled, released or expired): the state
change is a conditional UPDATE on `status = 'pending'`, so a settle racing the expiry
sweeper cannot apply twice. Holds carry a TTL; `expire_due` returns stranded money (a
process killed mid-request) to `available`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import budgets, ledger, quotas
from bytespike.billing.ledger import Movement, Overdraft
from bytespike.billing.tables import PENDING, holds, wallets
from bytespike.db.direct import hot
from bytespike.errors import InsufficientBalance
from bytespike.records import record

log = logging.getLogger(__name__)


class HoldClosed(Exception):
    """The hold was already settled or released; settling it again would charge twice."""


@record
class Placed:
    hold_id: int
    entry_id: int  # its 'hold' ledger entry, which its usage record names


@record
class Settlement:
    charged: int
    uncollected: int  # cost above the hold that the wallet (or a cap) could not cover
    released: int  # what the hold still reserved when it was settled (0 if it had expired)
    entry_id: int | None  # its 'settle' ledger entry; none when nothing moved


# Built once (hot path): reusing a statement object skips its compilation and cache key.
_h = holds.c
_INSERT = hot(sa.insert(holds).returning(_h.id))
_CLOSE = hot(
    sa.update(holds)
    .where(_h.id == sa.bindparam("hold"), _h.status == sa.bindparam("was"))
    .values(status=sa.bindparam("status"), closed_at=sa.bindparam("closed_at"))
    .returning(_h.wallet_id, _h.amount_micros, _h.key_id, _h.model)
)


async def place(
    conn: AsyncConnection,
    wallet_id: int,
    amount: int,
    *,
    now: datetime,
    ttl: timedelta,
    key_id: int | None = None,
    model: str | None = None,
    token: int | None = None,
) -> Placed:
    """Reserve `amount` micros; raises InsufficientBalance when `available` cannot cover it.
    `token`: the call's, to find its hold by (`release_by_token`)."""
    if amount <= 0:
        raise ValueError("a hold must be positive")
    row = {
        "wallet_id": wallet_id,
        "key_id": key_id,
        "model": model,
        "amount_micros": amount,
        "status": "pending",
        "created_at": now,
        "expires_at": now + ttl,
        "token": token,
    }
    hold_id = (await conn.execute(_INSERT, row)).scalar_one()
    try:
        entry_id = await ledger.post(
            conn,
            wallet_id,
            "hold",
            Movement(available=-amount, held=amount),
            now=now,
            hold_id=hold_id,
            key_id=key_id,
            model=model,
        )
    except Overdraft as exc:
        # Nothing may survive a refusal, even if the caller catches it and commits.
        await conn.execute(sa.delete(holds).where(holds.c.id == hold_id))
        raise InsufficientBalance("insufficient balance for this request") from exc
    return Placed(hold_id=int(hold_id), entry_id=entry_id)


async def _close(
    conn: AsyncConnection, hold_id: int, status: str, now: datetime, *, was: str = "pending"
) -> sa.Row[int, int, int | None, str | None] | None:
    """Move a hold from state `was` to `status`; None if it was not in state `was`."""
    params = {"hold": hold_id, "was": was, "status": status, "closed_at": now}
    row: sa.Row[int, int, int | None, str | None] | None
    row = (await conn.execute(_CLOSE, params)).one_or_none()
    return row


async def settle(
    conn: AsyncConnection,
    hold_id: int,
    cost: int,
    *,
    now: datetime,
    room: int | None = None,
) -> Settlement:
    """Charge the actual `cost` against the hold and return the rest to `available`.

    A cost above the hold (the estimate was beaten) is taken from `available` as far as it
    goes; the remainder is recorded as uncollected, never as a negative balance. A hold
    that had already expired is charged the same way, straight from `available`. With a
    spend cap, `room` is what the cap allows beyond what it already counts as held: the
    charge never passes what the hold still reserves plus `room` (an expired hold reserves
    nothing any more). Moving a cap's counters is the caller's part (`quotas.unhold`),
    since only it knows the cap's period.
    """
    if cost < 0:
        raise ValueError("a cost cannot be negative")
    row = await _close(conn, hold_id, "settled", now)
    if row is None:
        # An expired hold already gave its money back: it is settled once, from `available`.
        expired = await _close(conn, hold_id, "settled", now, was="expired")
        if expired is None:
            raise HoldClosed(f"hold {hold_id} is {await _status(conn, hold_id)}")
        wallet_id, _, key_id, model = expired
        amount = 0
    else:
        wallet_id, amount, key_id, model = row
    charged = cost if cost <= amount else min(cost, amount + await lock_wallet(conn, wallet_id))
    if room is not None:
        charged = min(charged, amount + room)
    entry_id = None
    if charged or amount or charged < cost:
        entry_id = await ledger.post(
            conn,
            wallet_id,
            "settle",
            Movement(held=-amount, available=amount - charged, spent=charged),
            now=now,
            hold_id=hold_id,
            key_id=key_id,
            model=model,
            memo=f"uncollected {cost - charged} micros" if charged < cost else None,
        )
    if charged < cost:
        log.warning("hold settled short", extra={"hold_id": hold_id, "uncollected": cost - charged})
    return Settlement(
        charged=charged, uncollected=cost - charged, released=amount, entry_id=entry_id
    )


async def _status(conn: AsyncConnection, hold_id: int) -> str:
    query = sa.select(holds.c.status).where(holds.c.id == hold_id)
    return str((await conn.execute(query)).scalar_one_or_none() or "missing")


async def lock_wallet(conn: AsyncConnection, wallet_id: int) -> int:
    """The wallet's `available`, its row locked until commit on PostgreSQL."""
    query = sa.select(wallets.c.available_micros).where(wallets.c.id == wallet_id)
    if conn.dialect.name == "postgresql":
        # Hold the row until commit so the amount read is still there when charged. NO KEY
        # UPDATE, not UPDATE: inserts referencing the wallet (holds, ledger entries) take KEY
        # SHARE on it, and FOR UPDATE would queue behind them and deadlock with their UPDATE.
        query = query.with_for_update(key_share=True)
    return int((await conn.execute(query)).scalar_one())


async def release_by_token(
    conn: AsyncConnection,
    wallet_id: int,
    token: int,
    *,
    now: datetime,
    capped: bool = True,
    budgeted: bool = True,
) -> None:
    """Release the pending holds of `wallet_id` placed with `token` (a call's, whose batch may
    have committed unbeknown to it)."""
    query = sa.select(_h.id).where(_h.wallet_id == wallet_id, PENDING, _h.token == token)
    for hold_id in (await conn.execute(query)).scalars().all():
        await release(conn, int(hold_id), now=now, capped=capped, budgeted=budgeted)


async def release(
    conn: AsyncConnection,
    hold_id: int,
    *,
    now: datetime,
    kind: str = "release",
    capped: bool = True,
    budgeted: bool = True,
) -> bool:
    """Return the whole hold to `available`; False if it had already ended. `capped=False`
    (`budgeted=False`): the caller knows the hold counts against no cap (no budget); the
    sweeper does not know, so it checks."""
    row = await _close(conn, hold_id, "released" if kind == "release" else "expired", now)
    if row is None:
        return False
    wallet_id, amount, key_id, model = row
    await ledger.post(
        conn,
        wallet_id,
        kind,
        Movement(held=-amount, available=amount),
        now=now,
        hold_id=hold_id,
        key_id=key_id,
        model=model,
    )
    if capped:  # after the wallet: every transaction locks a wallet before a cap row
        await quotas.unhold(conn, key_id, model, amount)
    if budgeted:  # and the key's row last
        await budgets.unhold(conn, key_id, amount)
    return True


async def expire_due(conn: AsyncConnection, *, now: datetime, limit: int = 500) -> int:
    """Release holds whose TTL has passed; returns how many. Safe to run in many processes."""
    query = (
        sa.select(holds.c.id, holds.c.wallet_id)
        .where(PENDING, holds.c.expires_at <= now)
        .order_by(holds.c.expires_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = (await conn.execute(query)).all()
    expired = 0
    # Wallet rows are locked in id order, as every sweeper does, so two sweepers whose
    # batches share wallets queue behind each other instead of deadlocking.
    for hold_id, _wallet_id in sorted(due, key=lambda row: (row.wallet_id, row.id)):
        expired += await release(conn, hold_id, now=now, kind="expire")
    return expired


async def pending_totals(conn: AsyncConnection) -> tuple[int, int]:
    """(how many holds are pending, the micro-dollars they hold): the calls in flight, read
    through the pending holds' partial index, so its cost follows them, not history."""
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_h.amount_micros), 0))
    count, held = (await conn.execute(query.where(PENDING))).one()
    return int(count), int(held)
