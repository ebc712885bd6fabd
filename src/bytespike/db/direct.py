"""Hot statements, run straight on the driver by the group-commit writer.

A metered call runs the same few statements (hold, settle, their ledger entries and the
usage record), and SQLAlchemy's execution path costs more than the database's work for
each (on PostgreSQL, an await through a greenlet per statement). Statements marked with
`hot()` are compiled by SQLAlchemy once per parameter shape; after that the writer binds
the parameters through SQLAlchemy's own bind processors (so values are stored exactly as
SQLAlchemy stores them) and executes the SQL itself: on SQLite's cursor (`Direct`), or on
asyncpg, whose own cache prepares each statement once per connection (`PgDirect`).

Only for statements whose results need no type processing: integers, strings, and
booleans read by truthiness. Every other statement takes SQLAlchemy's path, on the same
connection and transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect

S = TypeVar("S", bound=sa.Executable)
Processor = Callable[[Any], Any]

# The hot statements by id, kept alive here so that no other statement ever takes an id of
# theirs. A statement is hot if `id(statement) in HOT`: one dict lookup, written out where
# it runs (db/batch.py), for every statement a batch executes.
HOT: dict[int, Any] = {}


def hot(statement: S) -> S:
    """Mark a statement built once at import for the group-commit writer's direct path."""
    HOT[id(statement)] = statement
    return statement


class _Plan:
    """A compiled statement and how to turn a parameter dict into its positional arguments:
    the values fetched by name in one C call (`?` repeats a name, `$n` not), then the few
    positions whose type has a bind processor (datetimes, say) processed."""

    __slots__ = ("_fetch", "_processed", "defaults", "sql")

    def __init__(
        self, sql: str, steps: Sequence[tuple[str, Processor | None]], defaults: dict[str, Any]
    ) -> None:
        self.sql = sql
        self.defaults = defaults  # literal values SQLAlchemy bound itself (the 0 of `>= 0`)
        names = [name for name, _ in steps]
        fetch = itemgetter(*names) if names else (lambda _values: ())
        # itemgetter of one name gives the value, not a 1-tuple.
        self._fetch: Callable[[dict[str, Any]], Any] = (
            (lambda values: (fetch(values),)) if len(names) == 1 else fetch
        )
        self._processed = [(i, process) for i, (_, process) in enumerate(steps) if process]

    def arguments(self, params: dict[str, Any]) -> Sequence[Any]:
        values = self._fetch({**self.defaults, **params} if self.defaults else params)
        if not self._processed:
            return values  # type: ignore[no-any-return]
        arguments = list(values)
        for i, process in self._processed:
            value = arguments[i]
            if value is not None:
                arguments[i] = process(value)
        return arguments


def _plan(statement: Any, params: dict[str, Any], dialect: Dialect) -> _Plan:
    keys = list(params) if isinstance(statement, sa.Insert) else None
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    names = compiled.positiontup or []
    binds = compiled.binds
    processors = {name: _processor(binds[name].type, dialect) for name in set(names)}
    defaults = {name: binds[name].value for name in set(names) if name not in params}
    return _Plan(compiled.string, [(name, processors[name]) for name in names], defaults)


def _processor(type_: Any, dialect: Dialect) -> Processor | None:
    impl = type_.dialect_impl(dialect)
    process: Processor | None = impl.bind_processor(dialect)
    if process is not None and _default_sqlite_datetime(impl):
        return _SqliteDateTime(process)
    return process


def _default_sqlite_datetime(impl: Any) -> bool:
    return (
        isinstance(impl, sqlite.DATETIME)
        and getattr(impl, "_storage_format", None) == sqlite.DATETIME._storage_format
    )


class _SqliteDateTime:
    """SQLite's DATETIME bind processor, for datetimes without the per-call dict: the same
    text ("YYYY-MM-DD HH:MM:SS.ffffff", any zone dropped; `_text`). Anything else goes to
    SQLAlchemy's own."""

    __slots__ = ("_fallback",)

    # The last datetime written and its text, as one tuple (so a thread reads a matching
    # pair): a call stores the same `now` in several rows, whose statements each have
    # their own processor.
    _last: tuple[datetime | None, str] = (None, "")

    def __init__(self, fallback: Processor) -> None:
        self._fallback = fallback

    def __call__(self, value: Any) -> Any:
        if type(value) is datetime:
            last, text = _SqliteDateTime._last
            if value is not last:
                text = _text(value)
                _SqliteDateTime._last = (value, text)
            return text
        return self._fallback(value)


# "YYYY-MM-DD HH:MM:" by minute, and "SS." by second: isoformat formats each of seven
# fields with C's sprintf, ~11,000 machine instructions a datetime, four times a call.
_MINUTES: dict[tuple[int, ...], str] = {}
_SECONDS = [f"{second:02d}." for second in range(60)]


def _text(value: datetime) -> str:
    minute = (value.year, value.month, value.day, value.hour, value.minute)
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) >= 64:  # a minute's worth of calls reuses one; old ones go
            _MINUTES.clear()
        head = _MINUTES[minute] = "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:".format(*minute)
    return head + _SECONDS[value.second] + str(1_000_000 + value.microsecond)[1:]


class Rows(list[Sequence[Any]]):
    """The fetched rows, with the result calls the hot statements' callers make. A list, so
    that making one from the driver's rows runs no Python."""

    __slots__ = ()

    def one(self) -> tuple[Any, ...]:
        if len(self) != 1:
            raise sa.exc.NoResultFound() if not self else sa.exc.MultipleResultsFound()
        return tuple(self[0])

    def one_or_none(self) -> tuple[Any, ...] | None:
        return None if not self else self.one()

    def scalar_one(self) -> Any:
        return self.one()[0]


class Plans:
    """Compiled plans, per statement and parameter names (the statements live as long as
    the process, so their ids are stable keys)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        # By statement id and parameter names; `Direct` reads it itself, sparing a call
        # per statement.
        self.compiled: dict[tuple[int, tuple[str, ...]], _Plan] = {}

    def get(self, statement: Any, params: dict[str, Any]) -> _Plan:
        key = (id(statement), tuple(params))
        plan = self.compiled.get(key)
        if plan is None:
            plan = self.compiled[key] = _plan(statement, params, self._dialect)
        return plan


class Direct:
    """Runs hot statements on one sqlite3 connection."""

    def __init__(self, raw: sqlite3.Connection, dialect: Dialect) -> None:
        self._raw = raw
        self._plans = Plans(dialect)
        self._compiled = self._plans.compiled

    def execute(self, statement: Any, params: dict[str, Any]) -> Rows:
        plan = self._compiled.get((id(statement), tuple(params)))  # as Plans.get keys it
        if plan is None:
            plan = self._plans.get(statement, params)
        cursor = self._raw.execute(plan.sql, plan.arguments(params))
        return Rows(cursor.fetchall() if cursor.description else ())


@dataclass(frozen=True, slots=True)
class Many:
    """A fused statement's form for a whole run of its operations (PostgreSQL): one execution
    for all of them, its one parameter ($1) a JSON array with an object per operation: its
    `columns`, and `ord`, its place in the run from 1 (the statement reads them back with
    `json_to_recordset`). It returns one row per operation, in their order: the value the
    single statement would have returned for it, NULL for one it did no work for.
    One JSON text, not an array per column: asyncpg encodes an array element by element in
    Python; a run of 8 settlements so took 2.5 times the instructions it takes now, round
    trip included (README, Performance).

    A statement that looks rows up reads its run `WHERE ord BETWEEN 1 AND 1000000`, always
    true (a run is at most db/batch.py's MAX_BATCH calls), for the planner: it takes a
    function's result for 100 rows, and planned so, a run of reserves read every API key
    (a hash join), and once its keys were looked up by index, every wallet. A range it
    cannot evaluate counts as 0.5 % of the rows, one, and the run's keys, orgs and wallets
    are each looked up by primary key (tests/integration/test_fused_plans.py)."""

    sql: str
    columns: tuple[str, ...]

    def arguments(self, params: list[dict[str, Any]]) -> list[Any]:
        names = self.columns
        rows = [{"ord": i, **{n: p[n] for n in names}} for i, p in enumerate(params, 1)]
        return [orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()]


class PgDirect:
    """Runs hot statements on one asyncpg connection (inside the caller's transaction)."""

    def __init__(self, raw: Any, plans: Plans) -> None:
        self._raw = raw
        self._plans = plans

    async def execute(self, statement: Any, params: dict[str, Any]) -> Rows:
        plan = self._plans.get(statement, params)
        return Rows(await self._raw.fetch(plan.sql, *plan.arguments(params)))

    async def values(self, statement: Any, params: list[dict[str, Any]]) -> list[Any]:
        """A statement returning one row, once per parameter set, in one round trip (asyncpg
        pipelines them); the first column of each row. One alone goes as a plain execution:
        asyncpg's pipeline costs more Python than the round trip it shares."""
        plan = self._plans.get(statement, params[0])
        if len(params) == 1:
            rows = await self._raw.fetch(plan.sql, *plan.arguments(params[0]))
        else:
            rows = await self._raw.fetchmany(plan.sql, [plan.arguments(p) for p in params])
        if len(rows) != len(params):
            raise RuntimeError(f"{len(rows)} rows for {len(params)} executions")
        return [row[0] for row in rows]

    async def many(self, many: Many, params: list[dict[str, Any]]) -> list[Any]:
        """`many` once for all of `params`, one parameter set per operation; the first column
        of the row it returns for each, in their order."""
        rows = await self._raw.fetch(many.sql, *many.arguments(params))
        if len(rows) != len(params):
            raise RuntimeError(f"{len(rows)} rows for {len(params)} operations")
        return [row[0] for row in rows]
