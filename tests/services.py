"""Reaching the real PostgreSQL and Redis servers the suite runs against.

On a machine without them those tests skip with the reason; in CI (CI=true) a missing
server is a failure, never a silent skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bytespike.db.engine import async_url

POSTGRES_URL = os.environ.get(
    "BYTESPIKE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BYTESPIKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def require(url: str, default_port: int, what: str) -> None:
    if reachable(url, default_port):
        return
    message = f"{what} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{message}; CI must run these tests (set BYTESPIKE_TEST_* or start it)")
    pytest.skip(f"{message}: start it, or set the BYTESPIKE_TEST_* URL, to run this test")


@contextlib.contextmanager
def own_postgres_database(prefix: str) -> Iterator[str]:
    """A new database on the PostgreSQL server while the block runs: its URL. Dropped after,
    its connections closed by force."""
    require(POSTGRES_URL, 5432, "PostgreSQL")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    engine = create_async_engine(async_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(sa.text(statement))
    await engine.dispose()
