"""Wallets: one per individual user and one per org; creation, lookup, top-ups, thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import alerts, ledger
from bytespike.billing.ledger import Movement
from bytespike.billing.tables import ledger_entries, wallets
from bytespike.errors import Conflict, InvalidRequest
from bytespike.money import MAX_BALANCE_MICROS, to_usd_text

DEFAULT_THRESHOLD_MICROS = 5_000_000


@dataclass(frozen=True, slots=True)
class WalletView:
    id: int
    available: int
    held: int
    topped_up: int
    spent: int
    threshold: int

    @property
    def low_balance_flagged(self) -> bool:
        return self.available <= self.threshold


@dataclass(frozen=True, slots=True)
class TopUp:
    entry_id: int
    wallet_id: int
    amount: int
    reference: str | None
    applied: bool  # False when the reference had been used already (a retried payment)


async def create(
    conn: AsyncConnection, *, now: datetime, user_id: int | None = None, org_id: int | None = None
) -> int:
    result = await conn.execute(
        sa.insert(wallets)
        .values(
            user_id=user_id,
            org_id=org_id,
            created_at=now,
            low_balance_threshold_micros=DEFAULT_THRESHOLD_MICROS,
        )
        .returning(wallets.c.id)
    )
    return int(result.scalar_one())


async def id_for(
    conn: AsyncConnection, *, user_id: int | None = None, org_id: int | None = None
) -> int | None:
    owner = wallets.c.user_id == user_id if user_id is not None else wallets.c.org_id == org_id
    return (await conn.execute(sa.select(wallets.c.id).where(owner))).scalar_one_or_none()


async def view(conn: AsyncConnection, wallet_id: int) -> WalletView:
    w = wallets.c
    row = (
        await conn.execute(
            sa.select(
                w.id,
                w.available_micros,
                w.held_micros,
                w.topped_up_micros,
                w.spent_micros,
                w.low_balance_threshold_micros,
            ).where(w.id == wallet_id)
        )
    ).one()
    return WalletView(*row)


async def set_threshold(
    conn: AsyncConnection, wallet_id: int, micros: int, *, now: datetime
) -> None:
    """Change the threshold; a threshold raised to or over `available` pages at once."""
    await conn.execute(
        sa.update(wallets)
        .where(wallets.c.id == wallet_id)
        .values(low_balance_threshold_micros=micros)
    )
    await alerts.threshold_changed(conn, wallet_id, now=now)


async def top_up(
    conn: AsyncConnection,
    wallet_id: int,
    amount: int,
    *,
    now: datetime,
    reference: str | None = None,
    memo: str | None = None,
) -> TopUp:
    """Credit the wallet once per reference: a repeated reference returns the first top-up."""
    if reference is not None and (earlier := await _by_reference(conn, reference)):
        return _same_or_conflict(earlier, wallet_id, amount)
    await _refuse_past_maximum(conn, wallet_id, amount)
    try:
        async with conn.begin_nested():
            entry_id = await ledger.post(
                conn,
                wallet_id,
                "topup",
                Movement(available=amount, topped_up=amount),
                now=now,
                reference=reference,
                memo=memo,
            )
    except IntegrityError:
        # A concurrent retry with the same reference committed first.
        earlier = await _by_reference(conn, reference) if reference else None
        if earlier is None:
            raise
        return _same_or_conflict(earlier, wallet_id, amount)
    return TopUp(entry_id, wallet_id, amount, reference, applied=True)


async def _refuse_past_maximum(conn: AsyncConnection, wallet_id: int, amount: int) -> None:
    """Refuse, before anything is written, a top-up that would leave the wallet holding more
    than MAX_BALANCE_MICROS: past it a balance no longer renders exactly as a JSON number.
    FOR UPDATE (PostgreSQL; SQLite has one writer anyway) keeps two concurrent top-ups from
    each fitting alone and passing it together."""
    w = wallets.c
    balance = (
        await conn.execute(
            sa.select(w.available_micros + w.held_micros).where(w.id == wallet_id).with_for_update()
        )
    ).scalar_one()
    if balance + amount > MAX_BALANCE_MICROS:
        room = max(MAX_BALANCE_MICROS - balance, 0)
        raise InvalidRequest(
            f"a top-up of {to_usd_text(amount)} USD would take the wallet past the maximum "
            f"balance of {to_usd_text(MAX_BALANCE_MICROS)} USD: it holds {to_usd_text(balance)} "
            f"USD, so at most {to_usd_text(room)} USD more can be added",
            code="balance_limit_exceeded",
        )


async def _by_reference(conn: AsyncConnection, reference: str) -> TopUp | None:
    e = ledger_entries.c
    row = (
        await conn.execute(
            sa.select(e.id, e.wallet_id, e.d_topped_up, e.kind).where(e.reference == reference)
        )
    ).one_or_none()
    if row is None:
        return None
    return TopUp(row.id, row.wallet_id, row.d_topped_up, reference, applied=False)


def _same_or_conflict(earlier: TopUp, wallet_id: int, amount: int) -> TopUp:
    if earlier.wallet_id != wallet_id or earlier.amount != amount:
        raise Conflict(
            f"reference {earlier.reference!r} was already used for a different top-up",
            code="reference_reused",
        )
    return earlier
