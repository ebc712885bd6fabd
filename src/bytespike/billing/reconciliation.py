"""Reconciliation: every invariant of the books, over every wallet (`ledger verify`).

It checks that every entry balances and is tied to a hold exactly when its kind is a hold's;
that each wallet's running balances are the sums of its entries, none negative (but
`adjusted`, which debits lower), and `held` the sum of its pending holds; that each hold has
the entries its state calls for and they move exactly its amount; and that each metered
call's usage record carries what its settlement charged and names its hold's 'hold' and
'settle' entries; and that each price correction (`ledger reprice`) moves what its calls'
corrections add up to.

It streams: wallets are taken in chunks by id, and each check is a statement per chunk that
aggregates in SQL (per wallet, per hold) and sends back a row per wallet, or only the rows
of what is broken, so memory is bounded by a chunk and the problems kept (`MAX_KEPT`), not
by the size of the ledger, and the time by one pass over the entries, holds and usage
records. Last, every reference of those tables (wallet, key, hold) must name a row that
exists: on PostgreSQL no foreign key enforces it on the metered path. The whole run reads
one snapshot (REPEATABLE READ on PostgreSQL; one read transaction under WAL on SQLite), so
calls that settle meanwhile cannot look like drift.

`ledger.verify` is the same check of balances for one wallet, which tests run after
every test that moves money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing.ledger import Balances
from bytespike.billing.tables import PENDING, holds, ledger_entries, price_corrections, wallets
from bytespike.keys.tables import api_keys
from bytespike.money import to_usd_text
from bytespike.usage.tables import usage_daily, usage_records

CHUNK = 500  # wallets per round of statements
MAX_KEPT = 1000  # problems reported in full; past it they are only counted

# The kinds of entry that belong to a hold, and the (settle, release, expire) entries each
# state of a hold may have beside its one 'hold' entry. A hold settled after it expired has
# an 'expire' entry, then a 'settle' entry unless nothing was charged (nothing moved).
HOLD_KINDS = ("hold", "settle", "release", "expire")
ENDINGS = {
    "pending": {(0, 0, 0)},
    "released": {(0, 1, 0)},
    "expired": {(0, 0, 1)},
    "settled": {(1, 0, 0), (1, 0, 1), (0, 0, 1)},
}
ACCOUNTS = ("available", "held", "spent", "topped_up", "adjusted")


@dataclass(frozen=True, slots=True)
class Problem:
    check: str  # what disagreed: balances (a wallet and its entries), holds, usage, corrections
    target_type: str  # wallet, hold, usage_record
    target_id: int
    message: str


@dataclass(slots=True)
class Report:
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    checked: dict[str, int] = field(
        default_factory=lambda: {"wallets": 0, "entries": 0, "holds": 0, "usage_records": 0}
    )

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, check: str, target_type: str, target_id: int, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_KEPT:
            self.problems.append(Problem(check, target_type, target_id, message))


async def run(conn: AsyncConnection, *, chunk: int = CHUNK) -> Report:
    """Check everything through `conn`, a connection on which nothing has run yet."""
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="REPEATABLE READ")
    report = Report()
    after = 0
    while ids := await _wallet_ids(conn, after, chunk):
        first, last = ids[0], ids[-1]
        await _check_wallets(conn, report, first, last)
        await _check_holds(conn, report, first, last)
        await _check_usage(conn, report, first, last)
        await _check_corrections(conn, report, first, last)
        after = last
    await _check_holds_without_entries(conn, report)
    await _check_references(conn, report)
    return report


async def _wallet_ids(conn: AsyncConnection, after: int, chunk: int) -> list[int]:
    w = wallets.c
    query = sa.select(w.id).where(w.id > after).order_by(w.id).limit(chunk)
    return [int(i) for i in (await conn.execute(query)).scalars()]


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _total(
    column: sa.ColumnElement[Any], condition: sa.ColumnElement[bool] | None = None
) -> sa.ColumnElement[Any]:
    value = column if condition is None else sa.case((condition, column), else_=0)
    return sa.func.coalesce(sa.func.sum(value), 0)


# --- wallets: entries balance, running balances = their sums, held = pending holds ---------


def _wallets_query(first: int, last: int) -> sa.Select[Any]:
    e, h, u, w = ledger_entries.c, holds.c, usage_records.c, wallets.c
    deltas = (e.d_available, e.d_held, e.d_spent, e.d_topped_up, e.d_adjusted)
    of_hold = e.kind.in_(HOLD_KINDS)
    sums = (
        sa.select(
            e.wallet_id,
            *(_total(d).label(d.name) for d in deltas),
            sa.func.count().label("entries"),
            _count(e.d_available + e.d_held + e.d_spent != e.d_topped_up + e.d_adjusted).label(
                "unbalanced"
            ),
            _count(
                sa.or_(
                    sa.and_(of_hold, e.hold_id.is_(None)),
                    sa.and_(sa.not_(of_hold), e.hold_id.is_not(None)),
                )
            ).label("misfiled"),
        )
        .where(e.wallet_id.between(first, last))
        .group_by(e.wallet_id)
        .subquery()
    )
    used = (
        sa.select(u.wallet_id, sa.func.count().label("records"))
        .where(u.wallet_id.between(first, last))
        .group_by(u.wallet_id)
        .subquery()
    )
    pending = (
        sa.select(h.wallet_id, sa.func.sum(h.amount_micros).label("pending"))
        .where(PENDING, h.wallet_id.between(first, last))
        .group_by(h.wallet_id)
        .subquery()
    )
    return (
        sa.select(
            w.id,
            w.available_micros,
            w.held_micros,
            w.spent_micros,
            w.topped_up_micros,
            w.adjusted_micros,
            *(sa.func.coalesce(c, 0) for c in list(sums.c)[1:]),
            sa.func.coalesce(pending.c.pending, 0),
            sa.func.coalesce(used.c.records, 0),
        )
        .select_from(
            wallets.outerjoin(sums, sums.c.wallet_id == w.id)
            .outerjoin(pending, pending.c.wallet_id == w.id)
            .outerjoin(used, used.c.wallet_id == w.id)
        )
        .where(w.id.between(first, last))
        .order_by(w.id)
    )


async def _check_wallets(conn: AsyncConnection, report: Report, first: int, last: int) -> None:
    for row in await conn.execute(_wallets_query(first, last)):
        wallet_id, *numbers = (int(v) for v in row)
        running, history = Balances(*numbers[:5]), Balances(*numbers[5:10])
        entries, unbalanced, misfiled, pending, records = numbers[10:]
        report.checked["wallets"] += 1
        report.checked["entries"] += entries
        report.checked["usage_records"] += records
        for message in _wallet_problems(running, history, unbalanced, misfiled, pending):
            report.add("balances", "wallet", wallet_id, message)


def _wallet_problems(
    running: Balances, history: Balances, unbalanced: int, misfiled: int, pending: int
) -> Iterator[str]:
    if unbalanced:
        yield f"{unbalanced} of its entries do not balance"
    if misfiled:
        yield (
            f"{misfiled} of its entries are tied to a hold when their kind is not a hold's, "
            "or the other way round"
        )
    for name in ACCOUNTS:
        now, summed = getattr(running, name), getattr(history, name)
        if now != summed:
            yield f"{name} is {_usd(now)} USD but its entries sum to {_usd(summed)} USD"
    for name in ("available", "held", "spent", "topped_up"):
        if getattr(running, name) < 0:
            yield f"{name} is negative: {_usd(getattr(running, name))} USD"
    if running.held != pending:
        yield f"held is {_usd(running.held)} USD, its pending holds {_usd(pending)} USD"


# --- holds: each has the entries its state calls for, and its usage record agrees -----------


def _holds_query(first: int, last: int) -> sa.Subquery:
    """One row per hold with entries in these wallets: the hold, what its entries did, and
    its usage records (found from the entries' side, through the primary key)."""
    e, h, u = ledger_entries.c, holds.c, usage_records.c
    per_hold = (
        sa.select(
            e.hold_id,
            e.wallet_id,
            *(_count(e.kind == kind).label(kind) for kind in HOLD_KINDS),
            _total(e.d_held, e.kind == "hold").label("placed"),
            _total(e.d_held).label("still_held"),
            _total(e.d_spent, e.kind == "settle").label("charged"),
            # Its 'hold' and 'settle' entries' ids, 0 for none (two of a kind: a rule above).
            _total(e.id, e.kind == "hold").label("hold_entry"),
            _total(e.id, e.kind == "settle").label("settle_entry"),
        )
        .where(e.wallet_id.between(first, last), e.hold_id.is_not(None))
        .group_by(e.hold_id, e.wallet_id)
        .subquery()
    )
    per_usage = (
        sa.select(
            u.hold_id,
            sa.func.count().label("records"),
            sa.func.sum(u.cost_micros).label("cost"),
            sa.func.coalesce(sa.func.min(u.hold_entry_id), 0).label("names_hold"),
            sa.func.coalesce(sa.func.min(u.settle_entry_id), 0).label("names_settle"),
        )
        .where(u.wallet_id.between(first, last), u.hold_id.is_not(None))
        .group_by(u.hold_id)
        .subquery()
    )
    return (
        sa.select(
            h.id,
            h.wallet_id,
            h.status,
            h.amount_micros.label("amount"),
            h.key_id,
            per_hold.c.wallet_id.label("entries_wallet"),
            *(per_hold.c[kind] for kind in HOLD_KINDS),
            per_hold.c.placed,
            per_hold.c.still_held,
            per_hold.c.charged,
            sa.func.coalesce(per_usage.c.records, 0).label("records"),
            per_usage.c.cost,
            per_hold.c.hold_entry,
            per_hold.c.settle_entry,
            per_usage.c.names_hold,
            per_usage.c.names_settle,
        )
        .select_from(
            per_hold.join(holds, h.id == per_hold.c.hold_id).outerjoin(
                per_usage, per_usage.c.hold_id == per_hold.c.hold_id
            )
        )
        .subquery()
    )


@dataclass(frozen=True, slots=True)
class _Rule:
    """One invariant of a hold: the SQL that finds it broken, and what to say then."""

    check: str
    broken: Callable[[Any], sa.ColumnElement[bool]]
    message: Callable[[sa.Row[Any]], str]


def _ended_right(c: Any) -> sa.ColumnElement[bool]:
    return sa.or_(
        *(
            sa.and_(c.status == status, c.settle == s, c.release == r, c.expire == x)
            for status, endings in ENDINGS.items()
            for s, r, x in endings
        )
    )


# A hold placed for a key is a metered call's: once settled it has one usage record, whose
# cost is what the settlement charged (a released or expired call's record, if it has one,
# charged nothing). Placed for no key, it has none.
_HOLD_RULES = (
    _Rule(
        "holds",
        lambda c: c.entries_wallet != c.wallet_id,
        lambda r: f"entries posted to wallet {r.entries_wallet}, the hold is for {r.wallet_id}",
    ),
    _Rule("holds", lambda c: c.hold != 1, lambda r: f"{r.hold} 'hold' entries instead of one"),
    _Rule(
        "holds",
        lambda c: c.placed != c.amount,
        lambda r: f"its 'hold' entry holds {_usd(r.placed)} USD, the hold {_usd(r.amount)} USD",
    ),
    _Rule(
        "holds",
        lambda c: c.still_held != sa.case((c.status == "pending", c.amount), else_=0),
        lambda r: f"its entries leave {_usd(r.still_held)} USD held by a {r.status} hold",
    ),
    _Rule(
        "holds",
        lambda c: sa.not_(_ended_right(c)),
        lambda r: (
            f"a {r.status} hold with {r.settle} 'settle', {r.release} 'release' and "
            f"{r.expire} 'expire' entries"
        ),
    ),
    _Rule(
        "usage",
        lambda c: c.records > 1,
        lambda r: f"{r.records} usage records for one call",
    ),
    _Rule(
        "usage",
        lambda c: sa.and_(c.records == 1, c.status == "pending"),
        lambda r: "a usage record for a call still in flight",
    ),
    _Rule(
        "usage",
        lambda c: sa.and_(c.records == 1, c.status != "pending", c.cost != c.charged),
        lambda r: (
            f"its usage record costs {_usd(r.cost)} USD, its settlement charged "
            f"{_usd(r.charged)} USD"
        ),
    ),
    # The receipt reads the hold's 'hold' and 'settle' entries by the ids its record keeps.
    # A record that names none was written by a version before 0017 (receipts.py's _entries).
    _Rule(
        "usage",
        lambda c: sa.and_(
            c.records == 1,
            c.names_hold != 0,
            sa.or_(c.names_hold != c.hold_entry, c.names_settle != c.settle_entry),
        ),
        lambda r: (
            f"its usage record names entries {r.names_hold or 'none'} and "
            f"{r.names_settle or 'none'}, its 'hold' and 'settle' entries are "
            f"{r.hold_entry or 'none'} and {r.settle_entry or 'none'}"
        ),
    ),
    _Rule(
        "usage",
        lambda c: sa.and_(c.records == 0, c.status == "settled", c.key_id.is_not(None)),
        lambda r: "a metered call settled without a usage record",
    ),
)


async def _check_holds(conn: AsyncConnection, report: Report, first: int, last: int) -> None:
    """Counted in SQL: rows come back only for holds that break a rule (drift is rare, so
    the second statement, which finds them, seldom runs)."""
    held = _holds_query(first, last)
    flags = [sa.case((rule.broken(held.c), 1), else_=0) for rule in _HOLD_RULES]
    broken = sa.or_(*(flag == 1 for flag in flags))
    summary = sa.select(sa.func.count(), _count(broken)).select_from(held)
    seen, bad = (int(n) for n in (await conn.execute(summary)).one())
    report.checked["holds"] += seen
    if not bad:
        return
    labelled = [flag.label(f"broken_{i}") for i, flag in enumerate(flags)]
    result = await conn.stream(sa.select(held, *labelled).where(broken))
    async for row in result:
        for i, rule in enumerate(_HOLD_RULES):
            if row._mapping[f"broken_{i}"]:
                report.add(rule.check, "hold", int(row.id), rule.message(row))


# --- usage records: each in the wallet its hold is, and none charging without a hold -------


async def _check_usage(conn: AsyncConnection, report: Report, first: int, last: int) -> None:
    u, h = usage_records.c, holds.c
    query = (
        sa.select(u.id, u.wallet_id, u.cost_micros, h.wallet_id.label("hold_wallet"))
        .select_from(usage_records.outerjoin(holds, h.id == u.hold_id))
        .where(
            u.wallet_id.between(first, last),
            sa.or_(
                sa.and_(u.hold_id.is_(None), u.cost_micros != 0),
                h.wallet_id != u.wallet_id,
            ),
        )
    )
    result = await conn.stream(query)
    async for row in result:
        if row.hold_wallet is None:
            message = f"charges {_usd(row.cost_micros)} USD with no hold, so no settlement"
        else:
            message = f"recorded for wallet {row.wallet_id}, its hold is for {row.hold_wallet}"
        report.add("usage", "usage_record", int(row.id), message)


# --- price corrections: each entry moves what its calls' corrections add up to ------------


async def _check_corrections(conn: AsyncConnection, report: Report, first: int, last: int) -> None:
    """A price correction's entry (`ledger reprice`) is in its calls' wallet and spends what
    their corrections add up to. Rows come back only for those that do not."""
    c, e = price_corrections.c, ledger_entries.c
    per_entry = (
        sa.select(
            c.entry_id,
            sa.func.sum(c.delta_micros).label("delta"),
            sa.func.min(c.wallet_id).label("wallet_id"),
            sa.func.max(c.wallet_id).label("other_wallet"),
        )
        .where(c.wallet_id.between(first, last))
        .group_by(c.entry_id)
        .subquery()
    )
    query = (
        sa.select(per_entry, e.d_spent, e.wallet_id.label("entry_wallet"))
        .select_from(per_entry.join(ledger_entries, e.id == per_entry.c.entry_id))
        .where(
            sa.or_(
                e.d_spent != per_entry.c.delta,
                e.wallet_id != per_entry.c.wallet_id,
                per_entry.c.wallet_id != per_entry.c.other_wallet,
            )
        )
    )
    for row in await conn.execute(query):
        message = (
            f"spends {_usd(row.d_spent)} USD for price corrections of its calls adding up to "
            f"{_usd(row.delta)} USD, of wallet {row.wallet_id}"
        )
        report.add("corrections", "ledger_entry", int(row.entry_id), message)


async def _check_holds_without_entries(conn: AsyncConnection, report: Report) -> None:
    """Holds are counted above through their entries; one without any is sought only when
    the count says there is one (the search has no index to use)."""
    total = int((await conn.execute(sa.select(sa.func.count()).select_from(holds))).scalar_one())
    if total <= report.checked["holds"]:
        return
    e, h = ledger_entries.c, holds.c
    query = (
        sa.select(h.id, h.status)
        .where(~sa.exists().where(e.hold_id == h.id))
        .order_by(h.id)
        .limit(MAX_KEPT)
    )
    for hold_id, status in await conn.execute(query):
        report.add("holds", "hold", int(hold_id), f"a {status} hold with no ledger entries")
    report.checked["holds"] = total


# The references of the tables a metered call writes. On PostgreSQL no foreign key checks
# them (migration 0014: they cost a tenth of the server's time per call), so this does.
REFERENCES = (
    (holds.c.wallet_id, wallets.c.id),
    (holds.c.key_id, api_keys.c.id),
    (ledger_entries.c.wallet_id, wallets.c.id),
    (ledger_entries.c.hold_id, holds.c.id),
    (ledger_entries.c.key_id, api_keys.c.id),
    (usage_records.c.wallet_id, wallets.c.id),
    (usage_records.c.hold_id, holds.c.id),
    (usage_records.c.key_id, api_keys.c.id),
    (usage_daily.c.wallet_id, wallets.c.id),
    (usage_daily.c.key_id, api_keys.c.id),
)


async def _check_references(conn: AsyncConnection, report: Report) -> None:
    """Every row of the hot tables names a wallet, key and hold that exist: one anti-join
    per reference, a row back for each that does not (at most MAX_KEPT)."""
    for column, referred in REFERENCES:
        table = column.table
        ident = table.c.id if "id" in table.c else column
        query = (
            sa.select(ident, column)
            .where(column.is_not(None), ~sa.exists().where(referred == column))
            .limit(MAX_KEPT)
        )
        for row_id, missing in await conn.execute(query):
            message = f"its {column.name} {missing} names no row of {referred.table.name}"
            report.add("references", table.name, int(row_id), message)


def _usd(micros: Any) -> str:
    return to_usd_text(int(micros))
