"""A call's receipt: how its usage record keeps it (each token class, the price period and
tier, the unit prices applied), and the lines read back, with the hold and ledger entries
that moved its money, for GET /api/v1/me/usage/{id}.

The lines are rebuilt from the stored token counts and the unit prices stored with them,
not from today's price book, so a receipt always shows what was charged; a later price
correction (`ledger reprice`) shows as a correction beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import pricing
from bytespike.billing.pricing import Line, Receipt
from bytespike.billing.tables import ENDED, ledger_entries, price_corrections
from bytespike.clock import as_utc, iso_z
from bytespike.money import MICROS_PER_USD, round_up, to_usd_number
from bytespike.upstream.base import Usage
from bytespike.usage.tables import usage_records

ROUNDING = (
    "each line is exact; their sum is rounded up to a whole micro-dollar once per call, "
    "and that is the cost"
)
# Columns of the classes Usage keeps beyond input, output and cached tokens.
CLASS_COLUMNS = (
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "tool_prompt_tokens",
    "web_search_requests",
)


def columns(usage: Usage | None, receipt: Receipt | None) -> dict[str, Any]:
    """The usage record's receipt columns (a call without usage has none to keep)."""
    counts = {name: getattr(usage, name) if usage else 0 for name in CLASS_COLUMNS}
    if receipt is None:
        return {**counts, "price_period": None, "price_tier": None, "unit_prices": None}
    prices = {line.name: str(line.unit_price) for line in receipt.lines}
    return {
        **counts,
        "price_period": receipt.period,
        "price_tier": receipt.tier,
        "unit_prices": orjson.dumps(prices).decode(),
    }


def usage_of(row: Any) -> Usage:
    """The Usage a stored usage record keeps (what `columns` and repo.row wrote)."""
    return Usage(
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cached_tokens=row.cached_tokens,
        **{name: getattr(row, name) for name in CLASS_COLUMNS},
    )


def stored(row: Any) -> Receipt | None:
    """The receipt a usage record keeps; None for one charged without a price (no usage
    reported, or recorded before receipts were)."""
    if row.unit_prices is None:
        return None
    prices = {name: Decimal(text) for name, text in orjson.loads(row.unit_prices).items()}
    usage = usage_of(row)
    lines = []
    for name, tokens in pricing.token_counts(usage).items():
        if name in prices:
            lines.append(Line(name, tokens, prices[name], tokens * prices[name]))
    for name, calls in pricing.fee_counts(usage).items():
        if name in prices:
            lines.append(Line(name, calls, prices[name], calls * prices[name] * MICROS_PER_USD))
    return Receipt(row.price_period, row.price_tier, tuple(lines))


@dataclass(frozen=True, slots=True)
class Found:
    """A usage record with what its money did: the ledger entries of its hold, and the
    price corrections that touched it."""

    record: Any  # the usage_records row
    entries: list[Any]  # its hold's ledger entries (id, kind, d_spent), oldest first
    corrections: list[Any]  # (entry id, delta micros, created_at)


async def find(conn: AsyncConnection, wallet_id: int, record_id: int) -> Found | None:
    """The wallet's usage record `record_id`, or None."""
    u = usage_records.c
    query = sa.select(usage_records).where(u.id == record_id, u.wallet_id == wallet_id)
    record = (await conn.execute(query)).one_or_none()
    if record is None:
        return None
    entries = [] if record.hold_id is None else await _entries(conn, record)
    c = price_corrections.c
    fixes = sa.select(c.entry_id, c.delta_micros, c.created_at).where(c.usage_id == record_id)
    corrections = list(await conn.execute(fixes.order_by(c.entry_id)))
    return Found(record, entries, corrections)


async def _entries(conn: AsyncConnection, record: Any) -> list[Any]:
    query = entries_query(
        record.hold_id, record.wallet_id, record.hold_entry_id, record.settle_entry_id
    )
    return list(await conn.execute(query))


def entries_query(
    hold_id: int, wallet_id: int, hold_entry_id: int | None, settle_entry_id: int | None
) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """The ledger entries of hold `hold_id`, oldest first: its 'hold' and 'settle' entries by
    the ids its usage record keeps, and a 'release' or 'expire' through their index by hold
    (billing/tables.py `ix_ledger_hold_ended`). A record that names none was written by a
    version before 0017 still running after the migration (a rolling upgrade's old
    replica): its hold's entries are then sought among its wallet's, the slow way."""
    e = ledger_entries.c
    columns = (e.id, e.kind, e.d_spent)
    if hold_entry_id is None:
        mine = sa.select(*columns).where(e.wallet_id == wallet_id, e.hold_id == hold_id)
        return mine.order_by(e.id)
    named = [i for i in (hold_entry_id, settle_entry_id) if i is not None]
    by_id = sa.select(*columns).where(e.id.in_(named))
    ended = sa.select(*columns).where(e.hold_id == hold_id, ENDED)
    return sa.union_all(by_id, ended).order_by("id")


def as_json(found: Found) -> dict[str, Any]:
    """The receipt as GET /api/v1/me/usage/{id} shows it."""
    record = found.record
    receipt = stored(record)
    corrected = sum(int(c.delta_micros) for c in found.corrections)
    return {
        "object": "usage.receipt",
        "id": str(record.id),
        "model": record.model,
        "provider": record.provider,
        "status": record.status,
        "created_at": iso_z(as_utc(record.created_at)),
        "request_id": record.request_id,
        "price_period": None if receipt is None else receipt.period,
        "tier": None if receipt is None else {"above_prompt_tokens": receipt.tier},
        "lines": None if receipt is None else [_line(line) for line in receipt.lines],
        "reasoning_tokens": record.reasoning_tokens,
        "subtotal_usd": None if receipt is None else _usd_text(receipt.exact),
        "cost_usd": to_usd_number(round_up(receipt.exact) if receipt else 0),
        "charged_usd": to_usd_number(record.cost_micros),
        "rounding": ROUNDING,
        "hold_id": None if record.hold_id is None else str(record.hold_id),
        "ledger_entries": [
            {"id": str(e.id), "kind": e.kind, "spent_usd": to_usd_number(e.d_spent)}
            for e in found.entries
        ],
        "corrections": [
            {
                "ledger_entry_id": str(c.entry_id),
                "amount_usd": to_usd_number(int(c.delta_micros)),
                "created_at": iso_z(as_utc(c.created_at)),
            }
            for c in found.corrections
        ],
        "corrected_usd": to_usd_number(int(record.cost_micros) + corrected),
    }


def _line(line: Line) -> dict[str, Any]:
    unit = (
        {"calls": line.quantity, "usd_per_call": str(line.unit_price)}
        if line.per_call
        else {"tokens": line.quantity, "usd_per_mtok": str(line.unit_price)}
    )
    return {"class": line.name, **unit, "amount_usd": _usd_text(line.amount)}


def _usd_text(micros: Decimal) -> str:
    """Exact decimal USD text of a (possibly fractional) micro-dollar amount."""
    text = f"{(micros / MICROS_PER_USD).normalize():f}"
    return text if "." in text else f"{text}.0"
