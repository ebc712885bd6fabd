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
leaves nothing behind and the batch still commits. On PostgreSQL the batch is one
transaction on the async pool: one commit instead of one per operation.

Failure policy: if a batch fails for any other reason (a database error), it is rolled
back and every operation in it is retried alone, so one bad operation fails only itself.
A caller is answered only after its batch has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.db.direct import Direct, is_hot
from bytespike.db.engine import Database, sqlite_pragmas
from bytespike.errors import BytespikeError

T = TypeVar("T")
Operation = Callable[[AsyncConnection], Awaitable[T]]
Outcome = tuple[Any, BaseException | None]

# Bounds a transaction's length, so one flush never holds the write lock for long.
MAX_BATCH = 256
# Inline batches between two WAL checkpoints (SQLite's own default is every 1,000 pages).
CHECKPOINT_EVERY = 500

log = logging.getLogger(__name__)


class SyncConnection:
    """What a batched operation sees: `execute` and `dialect`, like an AsyncConnection, but
    running the statement at once on a synchronous connection (hot statements straight on
    the driver, see db/direct.py)."""

    def __init__(self, conn: Connection, direct: Direct) -> None:
        self._conn = conn
        self._direct = direct
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if isinstance(parameters, dict) and is_hot(statement):
            return self._direct.execute(statement, parameters)
        return self._conn.execute(statement, parameters)


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
    synchronous=NORMAL) and never checkpoint: checkpoints, which do, run on the thread.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url).set(drivername="sqlite")
        self._threaded = sa.create_engine(parsed, poolclass=sa.pool.SingletonThreadPool)
        sqlite_pragmas(self._threaded, immediate=True)
        self._inline_engine = sa.create_engine(
            parsed,
            poolclass=sa.pool.StaticPool,
            # Used only under the write lock, from the loop thread; closed from any thread.
            connect_args={"check_same_thread": False},
        )
        # No `begin` hook: `_run` issues BEGIN IMMEDIATE on the driver itself.
        sqlite_pragmas(
            self._inline_engine,
            immediate=None,
            busy_ms=0,
            pragmas=("PRAGMA wal_autocheckpoint=0",),
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
            loop = asyncio.get_running_loop()
            self._checkpoint = loop.run_in_executor(self._thread, self._run_checkpoint)
            self._checkpoint.add_done_callback(self._checkpointed)
        return outcomes

    async def run(self, batch: list[Operation[Any]]) -> list[Outcome]:
        """The batch, inline if the database is free, else on the thread once it is."""
        outcomes = self.run_inline(batch)
        if outcomes is None:
            loop = asyncio.get_running_loop()
            outcomes = await loop.run_in_executor(self._thread, self._run_threaded, batch)
        return outcomes

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

    def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
        self._inline_engine.dispose()
        # sqlite3 connections belong to the thread that made them: close it there.
        self._thread.submit(self._release).result()
        self._thread.shutdown(wait=True)


def _run(conn: Connection, batch: list[Operation[Any]], *, begin: bool = False) -> list[Outcome]:
    """The batch in one transaction; `begin`: the connection has no BEGIN hook, so issue it."""
    outcomes: list[Outcome] = []
    raw = conn.connection.driver_connection
    assert raw is not None
    with conn.begin():
        if begin:
            raw.execute("BEGIN IMMEDIATE")
        adapter = SyncConnection(conn, _direct(conn, raw))
        for op in batch:
            try:
                outcomes.append((_drive(op, adapter), None))
            except BytespikeError as refused:
                outcomes.append((None, refused))
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


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[tuple[int, Operation[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._kicked = False
        self._writer = _Writer(db.url) if db.is_sqlite else None

    async def run(self, op: Operation[T], *, order: int = 0) -> T:
        """Run `op` in the next batch. A batch runs its operations by `order` (the wallet
        id), so two PostgreSQL replicas' batches lock wallets in the same order and cannot
        deadlock on them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((order, op, future))
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
            try:
                while self._queue:
                    batch = self._take()
                    outcomes = self._writer.run_inline([op for op, _ in batch])
                    if outcomes is None:  # another process writes: wait for it off the loop
                        self._queue[0:0] = [(0, op, future) for op, future in batch]
                        break
                    _answer(batch, outcomes)
            except Exception:  # the flusher retries these operations one by one
                self._queue[0:0] = [(0, op, future) for op, future in batch]
        if self._queue:
            self._flusher = asyncio.create_task(self._flush_all())

    def _take(self) -> list[tuple[Operation[Any], asyncio.Future[Any]]]:
        taken, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        return [(op, future) for _order, op, future in sorted(taken, key=lambda t: t[0])]

    async def _flush_all(self) -> None:
        while self._queue:
            batch = self._take()
            try:
                await self._flush(batch)
            except Exception:  # isolate the culprit: retry each operation on its own
                for item in batch:
                    if not item[1].done():
                        await self._flush([item], alone=True)

    async def _flush(
        self, batch: list[tuple[Operation[Any], asyncio.Future[Any]]], *, alone: bool = False
    ) -> None:
        try:
            if self._writer is not None:
                # The process's other SQLite writers (sweeper, webhooks, admin) queue here.
                async with self._db.write_lock or contextlib.nullcontext():
                    outcomes = await self._writer.run([op for op, _ in batch])
            else:
                outcomes = await _run_async(self._db, [op for op, _ in batch])
        except Exception as exc:
            if not alone:
                raise
            for _op, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        _answer(batch, outcomes)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()


def _answer(
    batch: list[tuple[Operation[Any], asyncio.Future[Any]]], outcomes: list[Outcome]
) -> None:
    """Answer each caller of a committed batch (one cancelled meanwhile is skipped)."""
    for (_op, future), (value, error) in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


async def _run_async(db: Database, batch: list[Operation[Any]]) -> list[Outcome]:
    """PostgreSQL: the batch in one transaction on the async pool (one commit, one checkout
    for all of it; other replicas still meet these rows' locks)."""
    outcomes: list[Outcome] = []
    async with db.write() as conn:
        for op in batch:
            try:
                outcomes.append((await op(conn), None))
            except BytespikeError as refused:
                outcomes.append((None, refused))
    return outcomes
