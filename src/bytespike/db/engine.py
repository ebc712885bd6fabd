"""The Database: one place that knows SQLite from PostgreSQL.

SQLite allows one writer at a time. Inside a process, writes queue on an asyncio lock
around a single write connection (no "database is locked" churn); across processes (the
CLI beside `serve`) `BEGIN IMMEDIATE` plus a busy timeout serialise them. Reads use their
own pool and, under WAL, never wait for the writer. PostgreSQL uses one pool for both.

Every engine hides statement parameters (`hide_parameters`) from its logs and from its
exceptions' text, which end up in logs too: a parameter can be a key's hash or prefix.

Failure policy: a database error propagates; callers fail closed (no hold, no call). One
that means the database is unavailable (refused, lost, pool exhausted, shutting down, SQLite
busy past its timeout) propagates as ServiceUnavailable, a 503 (db/outage.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bytespike.db import outage

SQLITE_BUSY_TIMEOUT_MS = 30_000


def async_url(url: str) -> str:
    """Accept the URLs users write (`postgresql://`, `sqlite:///`) and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def sqlite_pragmas(
    engine: Engine,
    *,
    immediate: bool | None,
    busy_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    pragmas: tuple[str, ...] = (),
) -> None:
    """WAL, foreign keys and a busy timeout on every connection; BEGIN IMMEDIATE (or plain
    BEGIN) when SQLAlchemy starts a transaction; `immediate=None`: the caller begins."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # First, so that switching to WAL also waits for another process's lock.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if immediate is None:
        return

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Hands out transactions: `write()` for a use case that changes data, `read()` otherwise."""

    def __init__(
        self, url: str, *, pool_size: int = 10, busy_ms: int = SQLITE_BUSY_TIMEOUT_MS
    ) -> None:
        """`busy_ms`: how long a SQLite statement waits for another process's lock."""
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        driver_url = async_url(url)
        if self.is_sqlite:
            ensure_sqlite_dir(url)
            self._writer = create_async_engine(
                driver_url, pool_size=1, max_overflow=0, hide_parameters=True
            )
            self._reader = create_async_engine(
                driver_url, pool_size=pool_size, hide_parameters=True
            )
            sqlite_pragmas(self._writer.sync_engine, immediate=True, busy_ms=busy_ms)
            sqlite_pragmas(self._reader.sync_engine, immediate=False, busy_ms=busy_ms)
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self._writer = create_async_engine(
                driver_url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
            )
            self._reader = self._writer
            self._write_lock = None
        # PostgreSQL's group-commit writer drives its transactions on the driver itself
        # (`batch`): SQLAlchemy, in autocommit mode there, issues no BEGIN or COMMIT of its own.
        self._batcher: AsyncEngine | None = None
        self._idle_batch: tuple[AsyncConnection, Any] | None = None  # see `batch`
        self._closing = False
        if not self.is_sqlite:
            self._batcher = create_async_engine(
                driver_url,
                pool_size=1,
                max_overflow=1,
                isolation_level="AUTOCOMMIT",
                hide_parameters=True,
            )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction for one use case: committed on success, rolled back on error."""
        with outage.guarded():
            if self._write_lock is None:
                async with self._writer.begin() as conn:
                    yield conn
                return
            async with self._write_lock, self._writer.begin() as conn:
                yield conn

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[tuple[AsyncConnection, Any]]:
        """PostgreSQL: a SQLAlchemy connection in autocommit mode and the asyncpg connection
        under it, for db/batch.py, which begins and commits its transactions on asyncpg (a
        round trip each, and no greenlet hop for the statements it runs there itself).

        The connection a batch ended with cleanly is kept for the next one instead of going
        back to the pool: a checkout and its return cost more Python than a small batch's
        own statements. One is kept at most; a batch that fails drops its connection."""
        if self._batcher is None:
            raise RuntimeError("batch() is for PostgreSQL; SQLite batches run in db/batch.py")
        with outage.guarded():  # the statements run on asyncpg raise its own exceptions
            held, self._idle_batch = self._idle_batch, None
            if held is None:
                conn = await self._batcher.connect()
                try:
                    held = (conn, (await conn.get_raw_connection()).driver_connection)
                except BaseException:
                    await conn.close()
                    raise
            try:
                yield held
            except BaseException:
                # Whatever state the driver is in now, it does not go back to the pool; and
                # its pool slot is given back even if invalidating fails too.
                try:
                    await held[0].invalidate()
                finally:
                    await held[0].close()
                raise
            if self._idle_batch is None and not self._closing:
                self._idle_batch = held
            else:
                await held[0].close()

    @property
    def dialect(self) -> Dialect:
        return self._writer.dialect

    @property
    def write_lock(self) -> asyncio.Lock | None:
        """Serialises this process's SQLite writers (None on PostgreSQL)."""
        return self._write_lock

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with outage.guarded():
            async with self._reader.connect() as conn:
                yield conn

    async def close(self) -> None:
        self._closing = True
        held, self._idle_batch = self._idle_batch, None
        if held is not None:
            await held[0].close()
        await self._writer.dispose()
        if self._batcher is not None:
            await self._batcher.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
