"""Group commit: the writes of concurrent requests share one SQLite transaction.

SQLite has one writer; a commit per request would serialise every call on the commit itself.
Instead each write use case is queued as an operation, and one flusher runs everything
queued so far in a single transaction. Operations must check before they write, so that an
expected refusal (a `BytespikeError`) leaves nothing behind and the batch still commits.
On PostgreSQL, which has many writers, each operation simply gets its own transaction.

Failure policy: if the batch fails for any other reason (a database error), it is rolled
back and every operation in it is retried alone, so one bad operation fails only itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.db.engine import Database
from bytespike.errors import BytespikeError

T = TypeVar("T")
Operation = Callable[[AsyncConnection], Awaitable[T]]

# Bounds a transaction's length, so one flush never holds the write lock for long.
MAX_BATCH = 256


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[tuple[Operation[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, op: Operation[T]) -> T:
        if not self._db.is_sqlite:
            async with self._db.write() as conn:
                return await op(conn)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # Shielded: a cancelled request must not cancel writes that others share.
        return await asyncio.shield(future)

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._flush(batch)
            except Exception:
                for op, future in batch:
                    if not future.done():
                        await self._flush([(op, future)], alone=True)

    async def _flush(
        self, batch: list[tuple[Operation[Any], asyncio.Future[Any]]], *, alone: bool = False
    ) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            async with self._db.write() as conn:
                for op, future in batch:
                    try:
                        results.append((future, await op(conn), None))
                    except BytespikeError as refused:
                        results.append((future, None, refused))
        except Exception as exc:
            if not alone:
                raise
            for _op, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        # Only after the commit: a caller must never act on a write that could still vanish.
        for future, value, error in results:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
