"""Price corrections after the fact (`bytespike ledger reprice`): a model's calls in a time
range priced again with the price book as it is now, and the difference posted to each
wallet as one balanced correction.

A call's correction is the difference between what the current book charges for its
usage (in the period in force when it started) and what its own receipt charged, less
the corrections it already had: so a call a cap charged less than its cost keeps that cut,
and a second run over the same calls finds nothing left to correct. Each wallet's
correction is an 'adjust' entry moving `available` and `spent` (a debit when the calls
were undercharged, a credit when overcharged), with a reason as its memo and a reference
derived from what it corrects, beside a `price_corrections` row per call.

Failure policy: each wallet is corrected in one transaction, whose call corrections are
read again under the wallet's lock, so two runs at once never correct a call twice (the
second finds it done, or meets the reference the first committed). A debit the wallet's
available balance cannot pay is refused for that wallet alone and reported; nothing is
written for it, and a later run (after a top-up) applies it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import ledger, pricing
from bytespike.billing.ledger import Movement, Overdraft
from bytespike.billing.tables import holds, ledger_entries, price_corrections
from bytespike.catalog import Model
from bytespike.clock import as_utc
from bytespike.money import to_usd_number
from bytespike.usage import receipts
from bytespike.usage.tables import usage_records


@dataclass(frozen=True, slots=True)
class Call:
    """A call to price again: what its receipt charged, and what the current book does."""

    usage_id: int
    wallet_id: int
    was: int  # what its own receipt charged (its cost before any cap cut it)
    now: int  # what the current price book charges for the same usage


@dataclass(frozen=True, slots=True)
class Correction:
    """One wallet's correction: `amount` is a debit if positive, a credit if negative."""

    wallet_id: int
    calls: int  # the calls whose charge it changes
    amount: int
    reference: str | None
    # applied; would_apply (a dry run); unchanged (the book charges what was charged);
    # already_applied (an earlier run corrected them); insufficient_available (a debit
    # the wallet's available balance cannot pay: nothing written)
    status: str
    entry_id: int | None = None


async def calls(
    conn: AsyncConnection, model: Model, since: datetime, until: datetime
) -> list[Call]:
    """Every call of `model` settled in [since, until) that reported usage, priced again.
    A full pass over the range's usage records: repricing is rare, and no index is kept
    for it on the metered path."""
    u, h = usage_records.c, holds.c
    query = (
        sa.select(usage_records, h.created_at.label("started"))
        .select_from(usage_records.outerjoin(holds, h.id == u.hold_id))
        .where(
            u.model == model.id,
            u.created_at >= since,
            u.created_at < until,
            sa.or_(u.unit_prices.is_not(None), u.input_tokens + u.output_tokens > 0),
        )
        .order_by(u.id)
    )
    found = []
    for row in await conn.execute(query):
        usage = receipts.usage_of(row)
        stored = receipts.stored(row)
        was = int(row.cost_micros) if stored is None else stored.cost
        started = as_utc(row.started if row.started is not None else row.created_at)
        now = pricing.charge(model, usage, started)
        found.append(Call(int(row.id), int(row.wallet_id), was, now))
    return found


def by_wallet(found: list[Call]) -> dict[int, list[Call]]:
    wallets: dict[int, list[Call]] = defaultdict(list)
    for call in found:
        wallets[call.wallet_id].append(call)
    return dict(sorted(wallets.items()))


async def correct(
    conn: AsyncConnection,
    wallet_id: int,
    found: list[Call],
    *,
    model: str,
    reason: str,
    now: datetime,
    dry_run: bool,
) -> Correction:
    """Correct one wallet's calls in the caller's transaction (one per wallet)."""
    await ledger.balances(conn, wallet_id, lock=True)  # its corrections are read under it
    done = await _corrected(conn, [call.usage_id for call in found])
    deltas = {c.usage_id: c.now - c.was - done.get(c.usage_id, 0) for c in found}
    deltas = {usage_id: delta for usage_id, delta in deltas.items() if delta}
    amount = sum(deltas.values())
    if not deltas:
        return Correction(wallet_id, 0, 0, None, "already_applied" if done else "unchanged")
    reference = _reference(model, wallet_id, deltas)
    if dry_run:
        return Correction(wallet_id, len(deltas), amount, reference, "would_apply")
    if await _booked(conn, reference):
        return Correction(wallet_id, 0, 0, reference, "already_applied")
    movement = Movement(available=-amount, spent=amount)
    try:
        async with conn.begin_nested():
            entry_id = await ledger.post(
                conn, wallet_id, "adjust", movement, now=now, model=model,
                reference=reference, memo=reason,
            )  # fmt: skip
            await conn.execute(
                sa.insert(price_corrections),
                [
                    {
                        "usage_id": usage_id,
                        "entry_id": entry_id,
                        "wallet_id": wallet_id,
                        "delta_micros": delta,
                        "created_at": now,
                    }
                    for usage_id, delta in deltas.items()
                ],
            )
    except Overdraft:
        return Correction(wallet_id, len(deltas), amount, reference, "insufficient_available")
    except IntegrityError:  # another run committed the same correction first
        if not await _booked(conn, reference):
            raise
        return Correction(wallet_id, 0, 0, reference, "already_applied")
    return Correction(wallet_id, len(deltas), amount, reference, "applied", entry_id)


async def _corrected(conn: AsyncConnection, usage_ids: list[int]) -> dict[int, int]:
    """The corrections these calls already had, summed per call."""
    c = price_corrections.c
    total: dict[int, int] = {}
    for start in range(0, len(usage_ids), 500):  # parameters per statement stay few
        chunk = usage_ids[start : start + 500]
        query = (
            sa.select(c.usage_id, sa.func.sum(c.delta_micros))
            .where(c.usage_id.in_(chunk))
            .group_by(c.usage_id)
        )
        total.update({int(u): int(d) for u, d in await conn.execute(query)})
    return total


def _reference(model: str, wallet_id: int, deltas: dict[int, int]) -> str:
    """The same correction of the same calls always has the same reference: a run that
    races another finds the unique reference taken."""
    digest = hashlib.sha256(model.encode())
    for usage_id, delta in sorted(deltas.items()):
        digest.update(f"|{usage_id}:{delta}".encode())
    return f"reprice:w{wallet_id}:{digest.hexdigest()[:40]}"


async def _booked(conn: AsyncConnection, reference: str) -> bool:
    e = ledger_entries.c
    query = sa.select(e.id).where(e.reference == reference)
    return (await conn.execute(query)).first() is not None


def as_json(correction: Correction) -> dict[str, Any]:
    return {
        "wallet_id": correction.wallet_id,
        "calls": correction.calls,
        "amount_usd": to_usd_number(correction.amount),
        "kind": "debit" if correction.amount > 0 else "credit" if correction.amount else None,
        "status": correction.status,
        "ledger_entry_id": correction.entry_id,
        "reference": correction.reference,
    }
