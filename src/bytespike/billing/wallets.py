"""Wallets: one per individual user and one per org; creation, lookup, top-ups, an operator's
corrections (adjustments), thresholds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import alerts, ledger
from bytespike.billing.ledger import Balances, Movement, Overdraft
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


@dataclass(frozen=True, slots=True)
class Adjustment:
    entry_id: int
    wallet_id: int
    amount: int  # a credit if positive, a debit if negative
    reason: str
    reference: str | None
    applied: bool  # False when the reference had been used already (a retried correction)


@dataclass(frozen=True, slots=True)
class _Booked:
    """An entry booked under a reference: what a repeat of the reference must match."""

    entry_id: int
    wallet_id: int
    kind: str
    amount: int  # what it credited: d_topped_up for a top-up, d_adjusted for an adjustment
    memo: str | None


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

    async def post() -> int:
        await _refuse_past_maximum(conn, wallet_id, amount, "a top-up")
        movement = Movement(available=amount, topped_up=amount)
        return await ledger.post(
            conn, wallet_id, "topup", movement, now=now, reference=reference, memo=memo
        )

    booked, applied = await _book_once(conn, wallet_id, "topup", amount, reference, post)
    return TopUp(booked.entry_id, wallet_id, amount, reference, applied)


async def adjust(
    conn: AsyncConnection,
    wallet_id: int,
    amount: int,
    *,
    reason: str,
    now: datetime,
    reference: str | None = None,
) -> Adjustment:
    """Correct the wallet by `amount` (a credit if positive, a debit if negative), once per
    reference like a top-up. A debit comes out of `available` only and never takes it below
    zero: money held by calls in flight is theirs until they settle."""

    async def post() -> int:
        if amount > 0:
            await _refuse_past_maximum(conn, wallet_id, amount, "a credit")
        movement = Movement(available=amount, adjusted=amount)
        try:
            return await ledger.post(
                conn, wallet_id, "adjust", movement, now=now, reference=reference, memo=reason
            )
        except Overdraft:
            raise _not_available(-amount, await ledger.balances(conn, wallet_id)) from None

    booked, applied = await _book_once(conn, wallet_id, "adjust", amount, reference, post)
    return Adjustment(booked.entry_id, wallet_id, amount, booked.memo or reason, reference, applied)


def _not_available(debit: int, now: Balances) -> InvalidRequest:
    held = f" ({to_usd_text(now.held)} USD more is held by calls in flight)" if now.held else ""
    return InvalidRequest(
        f"a debit of {to_usd_text(debit)} USD would take the wallet's available balance below "
        f"zero: it has {to_usd_text(now.available)} USD available{held}",
        code="insufficient_available",
    )


async def _book_once(
    conn: AsyncConnection,
    wallet_id: int,
    kind: str,
    amount: int,
    reference: str | None,
    post: Callable[[], Awaitable[int]],
) -> tuple[_Booked, bool]:
    """Run `post` unless `reference` was booked already; (the entry, whether it is new)."""
    if reference is not None and (earlier := await _by_reference(conn, reference)):
        return _same_or_conflict(earlier, reference, kind, wallet_id, amount), False
    try:
        async with conn.begin_nested():
            entry_id = await post()
    except IntegrityError:
        # A concurrent retry with the same reference committed first.
        if reference is None or (earlier := await _by_reference(conn, reference)) is None:
            raise
        return _same_or_conflict(earlier, reference, kind, wallet_id, amount), False
    return _Booked(entry_id, wallet_id, kind, amount, None), True


async def _refuse_past_maximum(
    conn: AsyncConnection, wallet_id: int, amount: int, what: str
) -> None:
    """Refuse, before anything is written, `what` (a top-up, a credit) that would leave the
    wallet holding more than MAX_BALANCE_MICROS: past it a balance no longer renders exactly
    as a JSON number. The row lock (PostgreSQL; SQLite has one writer anyway) keeps two
    concurrent credits from each fitting alone and passing it together; NO KEY UPDATE, not
    UPDATE, for the reason holds.lock_wallet gives."""
    w = wallets.c
    query = sa.select(w.available_micros + w.held_micros).where(w.id == wallet_id)
    balance = (await conn.execute(query.with_for_update(key_share=True))).scalar_one()
    if balance + amount > MAX_BALANCE_MICROS:
        room = max(MAX_BALANCE_MICROS - balance, 0)
        raise InvalidRequest(
            f"{what} of {to_usd_text(amount)} USD would take the wallet past the maximum "
            f"balance of {to_usd_text(MAX_BALANCE_MICROS)} USD: it holds {to_usd_text(balance)} "
            f"USD, so at most {to_usd_text(room)} USD more can be added",
            code="balance_limit_exceeded",
        )


async def _by_reference(conn: AsyncConnection, reference: str) -> _Booked | None:
    e = ledger_entries.c
    query = sa.select(e.id, e.wallet_id, e.kind, e.d_topped_up, e.d_adjusted, e.memo)
    row = (await conn.execute(query.where(e.reference == reference))).one_or_none()
    if row is None:
        return None
    amount = row.d_topped_up if row.kind == "topup" else row.d_adjusted
    return _Booked(row.id, row.wallet_id, row.kind, amount, row.memo)


def _same_or_conflict(
    earlier: _Booked, reference: str, kind: str, wallet_id: int, amount: int
) -> _Booked:
    if (earlier.kind, earlier.wallet_id, earlier.amount) != (kind, wallet_id, amount):
        what = "top-up" if earlier.kind == "topup" else "adjustment"
        raise Conflict(
            f"reference {reference!r} was already used for a different {what}",
            code="reference_reused",
        )
    return earlier


async def owner_and_adjusted(
    conn: AsyncConnection, wallet_id: int
) -> sa.Row[int | None, int | None, int, datetime]:
    """What `view` leaves out, for operators: the owner (user_id or org_id), the lifetime
    adjustments and when the wallet was made."""
    w = wallets.c
    query = sa.select(w.user_id, w.org_id, w.adjusted_micros, w.created_at).where(w.id == wallet_id)
    return (await conn.execute(query)).one()
