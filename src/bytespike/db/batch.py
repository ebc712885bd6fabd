"""Group commit: the writes of concurrent requests share one transaction.

SQLite has one writer; a commit per request would serialise every call on the commit
itself, and an async driver pays a thread hop (and a wake-up of the event loop) for every
statement. Instead each write use case is queued as an operation; once per turn of the
event loop, everything queued so far runs as one transaction on a synchronous connection
(`_Writer`), right there on the loop's thread when nothing else is writing, or on a writer
thread when another process holds SQLite's write lock, so the loop never waits for it.
The operations are the same async functions the rest of the code uses: they get a
`SyncConnection`, whose `execute` never suspends, so each runs to completion at once.

Operations must check before they write, so that an expected refusal (a `BytespikeError`)
leaves nothing behind and the batch still commits. On PostgreSQL a batch is its runs of
fused statements (`Fused`), each one round trip that commits on its own, then one
transaction for the rest, driven on asyncpg itself; the next batch waits one turn of the
event loop, so that the callers just answered can join it (`GroupCommit._flush_all`).

Failure policy: if a batch fails for any other reason (a database error), it is rolled
back (on PostgreSQL, what has not committed: a run answered before stands) and every
operation in it not yet answered is retried alone, so one bad operation fails only itself.
A caller is answered only after what wrote its operation has committed. An operation that
fails because the database is unavailable fails with ServiceUnavailable, a 503
(db/outage.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.db import outage
from bytespike.db.direct import HOT, Direct, Many, PgDirect, Plans
from bytespike.db.engine import Database, sqlite_pragmas
from bytespike.errors import BytespikeError

T = TypeVar("T")
Operation = Callable[[AsyncConnection], Awaitable[T]]
Outcome = tuple[Any, BaseException | None]
# Writes what a batch's operations left for its end (`Later`): given their parts, in order.
Writer = Callable[[AsyncConnection, list[Any]], Awaitable[None]]

# Bounds a transaction's length, so one flush never holds the write lock for long.
MAX_BATCH = 256
# The shortest run of fused operations sent as one statement (`Many`): its statement costs
# PostgreSQL more to start than one call's, so a run of 2 costs the same or more that way
# than as 2 pipelined executions; from 3 on it costs less (PostgreSQL CPU per call, by
# bench/pg_runs.py: 1.07 of the pipelined at 2 calls, 0.85 at 3, 0.57 at 8, 0.44 at 16).
MANY_FROM = 3
# Inline batches between two WAL checkpoints (SQLite's own default is every 1,000 pages).
CHECKPOINT_EVERY = 500
# What the WAL file is cut back to when it starts over (SQLite keeps it at its peak).
WAL_SIZE_LIMIT = 64 * 1024 * 1024

log = logging.getLogger(__name__)


class Later:
    """What the operations of one batch leave for its end, to be written once for all of
    them just before it commits: a day's usage rollup row, say, which every settlement of
    the batch would otherwise update in turn (usage/rollups.py). An operation's parts count
    only if it succeeds: those of one refused (a BytespikeError) are dropped with it."""

    def __init__(self) -> None:
        self._parts: list[tuple[Writer, Any]] = []

    def later(self, writer: Writer, part: Any) -> None:
        self._parts.append((writer, part))

    def mark(self) -> int:
        return len(self._parts)

    def drop_since(self, mark: int) -> None:
        del self._parts[mark:]

    async def write_later(self) -> None:
        by_writer: dict[Writer, list[Any]] = {}
        for writer, part in self._parts:
            by_writer.setdefault(writer, []).append(part)
        self._parts.clear()
        for writer, parts in by_writer.items():
            await writer(cast(AsyncConnection, self), parts)


class SyncConnection(Later):
    """What a batched operation sees: `execute` and `dialect`, like an AsyncConnection, but
    running the statement at once on a synchronous connection (hot statements straight on
    the driver, see db/direct.py); and `later` (Later)."""

    def __init__(self, conn: Connection, direct: Direct) -> None:
        super().__init__()
        self._conn = conn
        self._direct = direct
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if isinstance(parameters, dict) and id(statement) in HOT:
            return self._direct.execute(statement, parameters)
        return self._conn.execute(statement, parameters)


class AsyncDirectConnection(Later):
    """The same for a PostgreSQL batch: hot statements straight on asyncpg, the rest through
    SQLAlchemy, on one connection and in one transaction."""

    def __init__(self, conn: AsyncConnection, direct: PgDirect) -> None:
        super().__init__()
        self.again = False  # a run again of a batch that failed (_run_postgres)
        self._conn = conn
        self._direct = direct
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if isinstance(parameters, dict) and id(statement) in HOT:
            return await self._direct.execute(statement, parameters)
        return await self._conn.execute(statement, parameters)


@dataclass(frozen=True, slots=True)
class Fused(Generic[T]):
    """An operation's common case as one statement, for PostgreSQL, where each statement is a
    round trip. The statement does all of the operation's work or none of it, on its own (no
    transaction around it: it commits as it ends), and returns one row either way: a value
    when it did the work (`result` turns it into the operation's answer), NULL when it wrote
    nothing (the operation then runs as usual). Consecutive fused operations with the same
    statement go to the server in one round trip, as one execution of `many` if it has one
    and they are at least MANY_FROM (the statement's overhead and the wallet's update paid
    once for them all), else as one execution each."""

    statement: Any
    params: dict[str, Any]
    result: Callable[[Any], T]
    many: Many | None = None


def _drive(op: Operation[Any], conn: SyncConnection) -> Any:
    """Run an operation that never suspends, without an event loop."""
    coroutine = op(cast(AsyncConnection, conn))
    try:
        coroutine.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value
    coroutine.close()  # type: ignore[attr-defined]
    raise RuntimeError("a batched operation awaited something other than the database")


class _Writer:
    """Runs SQLite batches: on the event loop's own thread when the database is free (no
    hand-off at all), else on a writer thread that may wait for another process's lock.

    The loop-thread connection never waits: its busy timeout is zero, so a batch that finds
    another process (the CLI) writing moves to the thread, whose connection waits the usual
    busy timeout there instead of stalling every request. Its commits never fsync (WAL,
    synchronous=NORMAL) and never checkpoint: checkpoints, which do, run on the thread, and
    hold the process's write lock meanwhile. Without it, batches commit during every
    checkpoint, so none copies the whole WAL back, the WAL never starts over, and it grows
    for as long as the load lasts (by gigabytes a minute, measured). With it, the next
    batch after a checkpoint starts the WAL over, and cuts it back to WAL_SIZE_LIMIT.
    """

    def __init__(self, url: str, lock: asyncio.Lock | None) -> None:
        parsed = make_url(url).set(drivername="sqlite")
        self._lock = lock or asyncio.Lock()
        size_limit = f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}"
        # Parameters hidden, as on every engine (db/engine.py): one can be a key's hash.
        self._threaded = sa.create_engine(
            parsed, poolclass=sa.pool.SingletonThreadPool, hide_parameters=True
        )
        sqlite_pragmas(self._threaded, immediate=True, pragmas=(size_limit,))
        self._inline_engine = sa.create_engine(
            parsed,
            poolclass=sa.pool.StaticPool,
            hide_parameters=True,
            # Used only under the write lock, from the loop thread; closed from any thread.
            connect_args={"check_same_thread": False},
        )
        # No `begin` hook: `_run` issues BEGIN IMMEDIATE on the driver itself.
        sqlite_pragmas(
            self._inline_engine,
            immediate=None,
            busy_ms=0,
            pragmas=("PRAGMA wal_autocheckpoint=0", size_limit),
        )
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        # Each held for the writer's life: no pool checkout per batch.
        self._inline: Connection | None = None
        self._thread_conn: Connection | None = None
        self._since_checkpoint = 0
        self._checkpoint: asyncio.Future[None] | None = None

    def run_inline(self, batch: list[Operation[Any]]) -> list[Outcome] | None:
        """The batch, committed on this (the loop's) thread; None if another process holds
        the write lock (nothing was written: run it with `run` instead)."""
        try:
            if self._inline is None or self._inline.closed:
                self._inline = self._inline_engine.connect()
            outcomes = _run(self._inline, batch, begin=True)
        except (sa.exc.OperationalError, sqlite3.OperationalError) as exc:
            if not _busy(exc):
                raise
            return None
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._since_checkpoint = 0
            self._checkpoint = asyncio.ensure_future(self._checkpoint_alone())
            self._checkpoint.add_done_callback(self._checkpointed)
        return outcomes

    async def run(self, batch: list[Operation[Any]]) -> list[Outcome]:
        """The batch, inline if the database is free, else on the thread once it is."""
        outcomes = self.run_inline(batch)
        if outcomes is None:
            loop = asyncio.get_running_loop()
            outcomes = await loop.run_in_executor(self._thread, self._run_threaded, batch)
        return outcomes

    async def _checkpoint_alone(self) -> None:
        """A checkpoint while no batch of this process commits (they queue meanwhile)."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._run_checkpoint)

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("WAL checkpoint failed", exc_info=done.exception())

    def _thread_connection(self) -> Connection:
        if self._thread_conn is None or self._thread_conn.closed:
            self._thread_conn = self._threaded.connect()
        return self._thread_conn

    def _run_threaded(self, batch: list[Operation[Any]]) -> list[Outcome]:
        return _run(self._thread_connection(), batch)

    def _run_checkpoint(self) -> None:
        # PASSIVE: copies what it can without waiting for, or blocking, readers and writers.
        # On the driver's connection, outside any transaction: SQLAlchemy would autobegin
        # one (BEGIN IMMEDIATE here) and keep the write lock.
        raw = self._thread_connection().connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _release(self) -> None:
        if self._thread_conn is not None:
            self._thread_conn.close()
        self._threaded.dispose()

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._inline is not None:
            self._inline.close()
        self._inline_engine.dispose()
        # sqlite3 connections belong to the thread that made them: close it there.
        self._thread.submit(self._release).result()
        self._thread.shutdown(wait=True)


def _run(conn: Connection, batch: list[Operation[Any]], *, begin: bool = False) -> list[Outcome]:
    """The batch in one transaction; `begin`: the connection has no BEGIN hook, so issue it."""
    raw = conn.connection.driver_connection
    assert raw is not None
    if begin:
        return _run_on_driver(conn, raw, batch)
    with conn.begin():
        return _drive_batch(conn, raw, batch)


def _run_on_driver(conn: Connection, raw: Any, batch: list[Operation[Any]]) -> list[Outcome]:
    """The batch in a transaction begun and ended on the driver itself: the metered path's
    statements all run there (db/direct.py), so SQLAlchemy's transaction bookkeeping would
    be all there is of it. A statement that is not hot goes through SQLAlchemy, which then
    begins its own transaction (a no-op on the driver, which is in ours): ending that one
    ends ours."""
    raw.execute("BEGIN IMMEDIATE")
    try:
        outcomes = _drive_batch(conn, raw, batch)
        if conn.in_transaction():
            conn.commit()
        else:
            raw.commit()
    except BaseException:
        if conn.in_transaction():
            conn.rollback()
        elif raw.in_transaction:  # a failed COMMIT can leave it open
            raw.rollback()
        raise
    return outcomes


def _drive_batch(conn: Connection, raw: Any, batch: list[Operation[Any]]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    adapter = SyncConnection(conn, _direct(conn, raw))
    for op in batch:
        mark = adapter.mark()
        try:
            outcomes.append((_drive(op, adapter), None))
        except BytespikeError as refused:
            adapter.drop_since(mark)
            outcomes.append((None, refused))
    _drive(lambda _conn: adapter.write_later(), adapter)
    return outcomes


def _direct(conn: Connection, raw: Any) -> Direct:
    """The connection's direct runner, kept on its pool record so plans outlive a batch."""
    info = conn.connection.info
    direct = info.get("bytespike_direct")
    if direct is None:
        direct = info["bytespike_direct"] = Direct(raw, conn.dialect)
    return direct


def _busy(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "locked" in text or "busy" in text


@dataclass(slots=True)
class _Queued:
    order: int
    op: Operation[Any]
    fused: Fused[Any] | None
    future: asyncio.Future[Any]


# Answers the callers of operations that have just committed (GroupCommit._committed).
Committed = Callable[[list[_Queued], list[Outcome]], None]


class GroupCommit:
    def __init__(self, db: Database, *, batches: Callable[[int], None] | None = None) -> None:
        self._db = db
        self._batches = batches  # told each committed batch's size (metrics)
        self._queue: list[_Queued] = []
        self._flusher: asyncio.Task[None] | None = None
        self._kicked = False
        self._writer = _Writer(db.url, db.write_lock) if db.is_sqlite else None
        self._plans = Plans(db.dialect)

    @property
    def fuses(self) -> bool:
        """Whether `run` takes an operation's `fused` form (PostgreSQL): on SQLite, where a
        statement is a function call, it never does, so callers need not build one."""
        return self._writer is None

    async def run(self, op: Operation[T], *, order: int = 0, fused: Fused[T] | None = None) -> T:
        """Run `op` in the next batch (on PostgreSQL, as `fused` when given). A batch runs its
        operations by `order` (the wallet id), so two PostgreSQL replicas' batches lock
        wallets in the same order and cannot deadlock on them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Queued(order, op, fused, future))
        if not self._kicked:
            # Once per loop turn: everything queued by then goes into the same batch.
            self._kicked = True
            loop.call_soon(self._kick)
        # A caller cancelled meanwhile still has its operation run with the batch (it is
        # queued); the flusher skips the answer. A hold placed so is freed by its TTL.
        return await future

    def _kick(self) -> None:
        """Flush at once, on the loop's thread, when nothing else is writing (SQLite, the
        common case: no task, no lock, no hand-off); otherwise leave it to the flusher."""
        self._kicked = False
        if self._flusher is not None and not self._flusher.done():
            return  # it takes what is queued when it is done with its batch
        lock = self._db.write_lock
        if self._writer is not None and not (lock is not None and lock.locked()):
            batch: list[_Queued] = []
            try:
                while self._queue:
                    batch = self._take()
                    outcomes = self._writer.run_inline([item.op for item in batch])
                    if outcomes is None:  # another process writes: wait for it off the loop
                        self._queue[0:0] = batch
                        break
                    self._committed(batch, outcomes)
            except Exception:  # the flusher retries these operations one by one
                self._queue[0:0] = batch
        if self._queue:
            self._flusher = asyncio.create_task(self._flush_all())

    def _take(self) -> list[_Queued]:
        """The next batch: fused operations with the same statement side by side, whatever
        their wallets, so they go to PostgreSQL together, as one run; each run, and the
        rest, by wallet. Every transaction then locks wallets in id order (a run is one)."""
        taken, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        return sorted(taken, key=lambda q: (id(q.fused.statement) if q.fused else 0, q.order))

    async def _flush_all(self) -> None:
        while self._queue:
            batch = self._take()
            try:
                await self._flush(batch)
            except Exception:  # isolate the culprit: retry each operation on its own
                for item in batch:
                    if not item.future.done():
                        await self._flush([item], alone=True)
            if self._writer is None and self._queue:
                # PostgreSQL, with a next batch waiting: one turn of the event loop first, so
                # that the callers just answered, and calls whose upstream answered meanwhile,
                # queue their next operation in time to join it. Fewer, fuller batches: at
                # concurrency 16, 1.2 times the calls per second (README, Performance).
                await asyncio.sleep(0)

    async def _flush(self, batch: list[_Queued], *, alone: bool = False) -> None:
        try:
            if self._writer is not None:
                # The process's other SQLite writers (sweeper, webhooks, admin) queue here.
                async with self._db.write_lock or contextlib.nullcontext():
                    outcomes = await self._writer.run([item.op for item in batch])
            else:
                await _run_postgres(self._db, self._plans, batch, self._committed, again=alone)
                return
        except Exception as exc:
            if not alone:
                raise
            reported = outage.as_reported(exc)  # the drivers' own errors surface here
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(reported)
            return
        self._committed(batch, outcomes)

    def _committed(self, batch: list[_Queued], outcomes: list[Outcome]) -> None:
        _answer(batch, outcomes)
        if self._batches is not None:
            # Never raises into the callers: a batch that failed after its commit would be
            # run again (`_kick` re-queues what raised).
            with contextlib.suppress(Exception):
                self._batches(len(batch))

    async def close(self) -> None:
        """Commit what is still queued (a stopping server's last settlements), then let go."""
        if self._queue and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush_all())
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()


def _answer(batch: list[_Queued], outcomes: list[Outcome]) -> None:
    """Answer each caller of a committed batch (one cancelled meanwhile is skipped)."""
    for item, (value, error) in zip(batch, outcomes, strict=True):
        if item.future.done():
            continue
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(value)


async def _outcome(op: Operation[Any], conn: AsyncDirectConnection) -> Outcome:
    mark = conn.mark()
    try:
        return await op(cast(AsyncConnection, conn)), None
    except BytespikeError as refused:
        conn.drop_since(mark)
        return None, refused


async def _run_postgres(
    db: Database,
    plans: Plans,
    batch: list[_Queued],
    committed: Committed,
    *,
    again: bool = False,
) -> None:
    """The batch on one connection: its runs of fused operations first (`_commit_runs`),
    then, in one transaction, the operations not fused and those a fused statement did no
    work for, answered (`committed`) as it commits. Other replicas still meet these rows'
    locks.

    If the batch fails, the runs answered so far have committed, and the rest are run again
    one by one (GroupCommit._flush_all). `again`: the operations are being run so after
    their batch failed, perhaps after what wrote them committed (its answer lost with the
    connection). They take their general path, told so (`conn.again`), to undo or find what
    the first run may have left (billing/metering.py)."""
    async with db.batch() as (conn, raw):
        direct = PgDirect(raw, plans)
        rest = list(batch) if again else await _commit_runs(direct, batch, committed)
        if not rest:
            return
        rest.sort(key=lambda item: item.order)  # by wallet, as every transaction locks them
        adapter = AsyncDirectConnection(conn, direct)
        adapter.again = again
        await raw.execute("BEGIN")
        try:
            outcomes = [await _outcome(item.op, adapter) for item in rest]
            await adapter.write_later()
        except BaseException:
            with contextlib.suppress(Exception):  # a broken connection is invalidated anyway
                await raw.execute("ROLLBACK")
            raise
        await raw.execute("COMMIT")
    committed(rest, outcomes)


async def _commit_runs(
    direct: PgDirect,
    batch: list[_Queued],
    committed: Committed,
) -> list[_Queued]:
    """Each run of the batch's fused operations with the same statement, as a round trip
    that commits on its own (a run's statement is its whole transaction), its operations
    answered (`committed`) as it does. Returns the rest: the operations not fused, and those
    a fused statement did no work for."""
    rest: list[_Queued] = []
    for run in _runs(batch):
        head = run[0].fused
        if head is None:
            rest += run
            continue
        params = [item.fused.params for item in run if item.fused]
        if head.many is not None and len(params) >= MANY_FROM:
            values = await direct.many(head.many, params)
        else:
            values = await direct.values(head.statement, params)
        answered: list[_Queued] = []
        outcomes: list[Outcome] = []
        for item, value in zip(run, values, strict=True):
            if value is None or item.fused is None:  # not the common case after all
                rest.append(item)
            else:
                answered.append(item)
                outcomes.append((item.fused.result(value), None))
        if answered:
            committed(answered, outcomes)
    return rest


def _runs(batch: list[_Queued]) -> list[list[_Queued]]:
    """The batch in order, in runs: consecutive operations fused with the same statement
    together, every other operation alone."""
    return [list(run) for _, run in itertools.groupby(batch, _statement_or_self)]


def _statement_or_self(item: _Queued) -> int:
    return id(item.fused.statement) if item.fused else id(item)
