"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, app clients."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bytespike import catalog
from bytespike.app import create_app
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.db.engine import Database, async_url
from bytespike.db.schema import metadata
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.settings import Settings
from tests.operator_support import Operator
from tests.services import own_postgres_database

ADMIN_TOKEN = "test-admin-token"


class FakeClock:
    """A clock tests move by hand (quota periods, hold expiry)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating every time is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, migrated once, dropped at the end."""
    with own_postgres_database("bytespike_test") as url:
        migrate.upgrade(url)
        yield url


async def _truncate(url: str) -> None:
    engine = create_async_engine(async_url(url))
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: each test that takes it runs on both backends."""
    if request.param == "sqlite":
        path = tmp_path / "bytespike.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url, admin_token=ADMIN_TOKEN, redis_url=None, secret_key="test-secret-key"
    )


@pytest.fixture
async def ctx(settings: Settings, clock: FakeClock) -> AsyncIterator[Context]:
    context = Context(
        settings=settings, db=Database(settings.database_url), catalog=catalog.load(), clock=clock
    )
    yield context
    await context.db.close()


@pytest.fixture
def limiter() -> MemoryRateLimiter:
    return MemoryRateLimiter()


@pytest.fixture
async def client(ctx: Context, limiter: MemoryRateLimiter) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (no background loops), with the test's own context and limiter."""
    app = create_app(ctx.settings, ctx=ctx, limiter=limiter, background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bytespike.test") as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(params=["cli", "api"])
def operator(
    request: pytest.FixtureRequest,
    ctx: Context,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> Operator:
    """An operator command through the CLI or the admin API (tests/operator_support.py)."""
    return Operator(request.param, ctx, client, admin_headers)


@pytest.fixture
def cli_operator(
    ctx: Context, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> Operator:
    """For what only the CLI has (its readable tables)."""
    return Operator("cli", ctx, client, admin_headers)


@pytest.fixture
def api_operator(
    ctx: Context, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> Operator:
    """For what only the HTTP API has (status codes, request ids)."""
    return Operator("api", ctx, client, admin_headers)
