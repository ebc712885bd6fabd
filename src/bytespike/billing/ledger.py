"""The ledger: the only code that moves money.

`post` appends one balanced entry and applies it to the wallet's running balances in the
same statement pair, guarded so that `available` and `held` can never go below zero, even
with many writers at once (the guard is a single conditional UPDATE, atomic on SQLite and
PostgreSQL alike). Entries are never updated or deleted; a mistake is corrected by a new
`adjust` entry.

Failure policy: fail closed. A refused guard raises `Overdraft` and the caller's
transaction rolls back, so no half-applied movement can exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import alerts
from bytespike.billing.tables import PENDING, holds, ledger_entries, wallets
from bytespike.db.direct import hot
from bytespike.records import record


class Overdraft(Exception):
    """The movement would take `available` or `held` below zero; nothing was written."""


@record
class Movement:
    """Deltas to a wallet's five accounts; balanced means assets + spend = funding."""

    available: int = 0
    held: int = 0
    spent: int = 0
    topped_up: int = 0
    adjusted: int = 0

    def __post_init__(self) -> None:
        if self.available + self.held + self.spent != self.topped_up + self.adjusted:
            raise ValueError(f"unbalanced ledger movement: {self}")


@dataclass(frozen=True, slots=True)
class Balances:
    available: int
    held: int
    spent: int
    topped_up: int
    adjusted: int


# Built once: these run twice per metered call, and a statement object reused is compiled
# and cache-keyed once instead of on every execution.
_w = wallets.c
_APPLY = hot(
    sa.update(wallets)
    .where(
        _w.id == sa.bindparam("wallet"),
        _w.available_micros + sa.bindparam("d_available") >= 0,
        _w.held_micros + sa.bindparam("d_held") >= 0,
    )
    .values(
        available_micros=_w.available_micros + sa.bindparam("d_available"),
        held_micros=_w.held_micros + sa.bindparam("d_held"),
        spent_micros=_w.spent_micros + sa.bindparam("d_spent"),
        topped_up_micros=_w.topped_up_micros + sa.bindparam("d_topped_up"),
        adjusted_micros=_w.adjusted_micros + sa.bindparam("d_adjusted"),
    )
    # Returned so the low-balance watch costs no extra query on the common path: it follows
    # settled available (available + held), see billing/alerts.py.
    .returning(
        _w.available_micros + _w.held_micros,
        _w.low_balance_threshold_micros,
        _w.low_balance_armed,
    )
)
_RECORD = hot(sa.insert(ledger_entries).returning(ledger_entries.c.id))


async def post(
    conn: AsyncConnection,
    wallet_id: int,
    kind: str,
    movement: Movement,
    *,
    now: datetime,
    hold_id: int | None = None,
    key_id: int | None = None,
    model: str | None = None,
    reference: str | None = None,
    memo: str | None = None,
) -> int:
    """Apply `movement` to the wallet and record it; returns the entry id."""
    deltas = {
        "d_available": movement.available,
        "d_held": movement.held,
        "d_spent": movement.spent,
        "d_topped_up": movement.topped_up,
        "d_adjusted": movement.adjusted,
    }
    after = (await conn.execute(_APPLY, {"wallet": wallet_id, **deltas})).one_or_none()
    if after is None:
        raise Overdraft(f"wallet {wallet_id}: {kind} of {movement} refused")
    entry = {
        "wallet_id": wallet_id,
        "kind": kind,
        "hold_id": hold_id,
        "key_id": key_id,
        "model": model,
        "reference": reference,
        "memo": memo,
        "created_at": now,
        **deltas,
    }
    result = await conn.execute(_RECORD, entry)
    entry_id = int(result.scalar_one())
    await alerts.after_movement(conn, wallet_id, movement, after, now=now)
    return entry_id


# A wallet's five running balances, in Balances' order.
_BALANCES = (
    _w.available_micros,
    _w.held_micros,
    _w.spent_micros,
    _w.topped_up_micros,
    _w.adjusted_micros,
)


async def balances(conn: AsyncConnection, wallet_id: int, *, lock: bool = False) -> Balances:
    """The wallet's five running balances; `lock`: its row held until commit (PostgreSQL;
    SQLite has one writer), so what is read is still true when the caller posts."""
    query = sa.select(*_BALANCES).where(_w.id == wallet_id)
    if lock:
        # NO KEY UPDATE, as holds.lock_wallet explains: FOR UPDATE would deadlock with
        # concurrent inserts that reference the wallet.
        query = query.with_for_update(key_share=True)
    return Balances(*(await conn.execute(query)).one())


async def entries(
    conn: AsyncConnection, wallet_id: int, *, before: int | None, limit: int
) -> list[sa.Row[Any]]:
    """Up to `limit` of the wallet's entries, newest first, older than entry `before` if
    given: a walk down `ix_ledger_wallet`."""
    e = ledger_entries.c
    query = (
        sa.select(ledger_entries).where(e.wallet_id == wallet_id).order_by(e.id.desc()).limit(limit)
    )
    if before is not None:
        query = query.where(e.id < before)
    return list(await conn.execute(query))


async def verify(conn: AsyncConnection, wallet_id: int) -> list[str]:
    """Check the wallet against its history; returns what disagrees (empty when sound).

    The running balances must equal the sums of the entries, no balance may be negative,
    and `held` must equal the open holds. All of it is read by one statement, so from one
    snapshot on both databases: PostgreSQL gives each statement of a READ COMMITTED
    transaction a snapshot of its own, and a settlement committing between two reads (the
    row after it, the entries before) would show as drift that is not there.
    """
    row = [int(v) for v in (await conn.execute(_verify_query(wallet_id))).one()]
    running, from_history, open_holds = Balances(*row[:5]), Balances(*row[5:10]), row[10]
    problems = []
    if running != from_history:
        problems.append(f"running balances {running} != sum of entries {from_history}")
    if running.available < 0 or running.held < 0:
        problems.append(f"negative balance {running}")
    if running.held != open_holds:
        problems.append(f"held {running.held} != open holds {open_holds}")
    return problems


def _verify_query(wallet_id: int) -> sa.Select[*tuple[int, ...]]:
    """The wallet's five running balances, the five sums of its entries, its open holds."""
    e = ledger_entries.c
    deltas = (e.d_available, e.d_held, e.d_spent, e.d_topped_up, e.d_adjusted)
    sums = (
        sa.select(*(sa.func.coalesce(sa.func.sum(d), 0).label(d.name) for d in deltas))
        .where(e.wallet_id == wallet_id)
        .subquery()
    )
    open_holds = (
        sa.select(sa.func.coalesce(sa.func.sum(holds.c.amount_micros), 0))
        .where(holds.c.wallet_id == wallet_id, PENDING)
        .scalar_subquery()
    )
    return (
        sa.select(*_BALANCES, *sums.c, open_holds)
        .select_from(wallets.join(sums, sa.true()))
        .where(_w.id == wallet_id)
    )
