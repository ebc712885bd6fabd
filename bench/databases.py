"""A fresh, throw-away database per benchmark run: a SQLite file in a temp directory, or a
PostgreSQL database `bytespike_bench_<pid>` created on the server and dropped afterwards
(with `--baseline`, one per side: `bytespike_bench_<pid>_baseline` and `..._current`).

Both can count rows of the tables the metered path writes, so the report can show that
every call really was metered.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

DEFAULT_POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
# (label, query): what the metering left behind. A table a build lacks counts as None.
METERING_COUNTS = (
    ("usage records", "SELECT count(*) FROM usage_records"),
    ("settled holds", "SELECT count(*) FROM holds WHERE status = 'settled'"),
    ("pending holds", "SELECT count(*) FROM holds WHERE status = 'pending'"),
    ("ledger entries", "SELECT count(*) FROM ledger_entries"),
)


class BenchDatabase(Protocol):
    name: str  # "sqlite" or "postgres"
    url: str  # what BYTESPIKE_DATABASE_URL gets

    def count(self, query: str) -> int | None:
        """The single integer `query` answers; None if it fails (a missing table)."""
        ...

    def drop(self) -> None: ...


class SqliteDatabase:
    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.path = directory / "bench.db"
        self.url = f"sqlite:///{self.path}"

    def count(self, query: str) -> int | None:
        with sqlite3.connect(self.path) as conn:
            try:
                return int(conn.execute(query).fetchone()[0])
            except sqlite3.Error:
                return None

    def drop(self) -> None:
        """The temp directory holding the file is removed by the caller."""


class PostgresDatabase:
    name = "postgres"

    def __init__(self, server: str = DEFAULT_POSTGRES_SERVER, suffix: str = "") -> None:
        self.server = server.rstrip("/")
        self.database = f"bytespike_bench_{os.getpid()}{suffix}"
        self.url = f"{self.server}/{self.database}"
        self._admin("DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self._admin("CREATE DATABASE {db}")

    def count(self, query: str) -> int | None:
        try:
            return asyncio.run(self._fetchval(self.url, query))
        except asyncpg.PostgresError:
            return None

    def drop(self) -> None:
        self._admin("DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    def _admin(self, template: str) -> None:
        # The name is ours (a fixed prefix and our pid), never outside input.
        statement = template.format(db=self.database)
        asyncio.run(self._execute(f"{self.server}/postgres", statement))

    @staticmethod
    async def _execute(url: str, statement: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    @staticmethod
    async def _fetchval(url: str, query: str) -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(query))
        finally:
            await conn.close()


def metering_counts(db: BenchDatabase) -> dict[str, int | None]:
    return {label: db.count(query) for label, query in METERING_COUNTS}


@contextmanager
def fresh_database(
    name: str, workdir: Path, postgres: str, suffix: str = ""
) -> Iterator[BenchDatabase]:
    db: BenchDatabase = (
        SqliteDatabase(workdir) if name == "sqlite" else PostgresDatabase(postgres, suffix)
    )
    try:
        yield db
    finally:
        db.drop()
