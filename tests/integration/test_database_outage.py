"""When the database cannot be reached, every route answers 503 with Retry-After, each in its
own envelope, and nothing answers 500: PostgreSQL refused, lost mid-life (its connections
cut by a proxy, or terminated by the server) and back again, SQLite busy or unopenable."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bytespike import catalog
from bytespike.app import create_app
from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.db.engine import Database
from bytespike.errors import ServiceUnavailable
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.settings import Settings
from tests.conftest import ADMIN_TOKEN, FakeClock, _truncate
from tests.database_faults import Relay, terminate_other_backends
from tests.factories import make_key, make_user, top_up

WELL_FORMED = "bsk-" + "A" * 43  # hashed and looked up: the lookup is what fails
HI = {"model": "mock", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
RETRY_AFTER = str(ServiceUnavailable.RETRY_AFTER_SECONDS)


def _generic(body: dict[str, Any]) -> None:
    assert body["error"]["type"] == "api_error", body


def _openai(body: dict[str, Any]) -> None:
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == "api_error", body


def _anthropic(body: dict[str, Any]) -> None:
    assert body["type"] == "error" and body["error"]["type"] == "api_error", body


Call = tuple[str, str, dict[str, Any] | None, Callable[[dict[str, Any]], None]]
KEY_CALLS: list[Call] = [
    ("GET", "/api/v1/me/account", None, _generic),
    ("GET", "/api/v1/me/usage", None, _generic),
    ("GET", "/api/v1/me/webhooks", None, _generic),
    ("POST", "/v1/chat/completions", HI, _openai),
    ("POST", "/v1/messages", HI, _anthropic),
    ("GET", "/v1/models", None, _openai),
]
ADMIN_CALLS: list[Call] = [
    ("POST", "/api/v1/admin/users", {"username": "bob", "email": "bob@dosia.ai"}, _generic),
]


@contextlib.asynccontextmanager
async def serving(db: Database, url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process on `db`, as tests/conftest.py's `client` builds it."""
    settings = Settings(
        database_url=url, admin_token=ADMIN_TOKEN, redis_url=None, secret_key="test-secret-key"
    )
    ctx = Context(settings=settings, db=db, catalog=catalog.load(), clock=FakeClock())
    app = create_app(settings, ctx=ctx, limiter=MemoryRateLimiter(), background=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bytespike.test") as c:
            yield c
    finally:
        await app.state.gateway.writes.close()
        await db.close()


async def call(client: httpx.AsyncClient, entry: Call, key: str) -> httpx.Response:
    method, path, body, _ = entry
    token = ADMIN_TOKEN if path.startswith("/api/v1/admin") else key
    return await client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )


def assert_unavailable(answer: httpx.Response, shape: Callable[[dict[str, Any]], None]) -> None:
    assert answer.status_code == 503, (answer.request.url, answer.text)
    assert answer.headers["retry-after"] == RETRY_AFTER
    shape(answer.json())


async def assert_every_route_unavailable(client: httpx.AsyncClient, key: str) -> None:
    for entry in [*KEY_CALLS, *ADMIN_CALLS]:
        assert_unavailable(await call(client, entry, key), entry[3])
    health = await client.get("/healthz")
    assert health.status_code == 503 and health.headers["retry-after"] == RETRY_AFTER


async def test_every_route_is_503_when_postgresql_refuses_connections() -> None:
    url = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    async with serving(Database(url), url) as client:
        await assert_every_route_unavailable(client, WELL_FORMED)


async def test_every_route_is_503_when_the_sqlite_file_cannot_be_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"  # a directory: SQLite cannot open it as a database
    async with serving(Database(url), url) as client:
        await assert_every_route_unavailable(client, WELL_FORMED)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "bytespike.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    asyncio.run(_truncate(postgres_database))
    return postgres_database


async def test_a_sqlite_write_busy_past_its_timeout_is_503(sqlite_url: str) -> None:
    other = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing, for longer than we wait
        async with serving(Database(sqlite_url, busy_ms=0), sqlite_url) as client:
            answer = await call(client, ADMIN_CALLS[0], WELL_FORMED)
            assert_unavailable(answer, _generic)
            other.execute("ROLLBACK")
            answer = await call(client, ADMIN_CALLS[0], WELL_FORMED)
            assert answer.status_code == 201, answer.text
    finally:
        other.close()


async def _provisioned(url: str) -> str:
    """A funded key on `url`'s database, made through its own short-lived Database."""
    db = Database(url)
    ctx = Context(
        settings=Settings(database_url=url), db=db, catalog=catalog.load(), clock=FakeClock()
    )
    try:
        await make_user(ctx)
        await top_up(ctx, "10", user="ada")
        return str((await make_key(ctx))["key"])
    finally:
        await db.close()


async def test_postgresql_lost_mid_life_is_503_on_every_route_then_recovers(
    postgres_url: str,
) -> None:
    key = await _provisioned(postgres_url)
    target = make_url(postgres_url)
    relay = Relay(target.port or 5432)
    await relay.resume()
    url = target.set(port=relay.port).render_as_string(hide_password=False)
    async with serving(Database(url), url) as client:
        for entry in KEY_CALLS:  # every pool has live connections, the key is cached
            assert (await call(client, entry, key)).status_code == 200, entry
        await relay.cut()
        await assert_every_route_unavailable(client, key)
        await relay.resume()
        for entry in KEY_CALLS:
            assert (await call(client, entry, key)).status_code == 200, entry
    await relay.cut()


async def test_postgresql_backends_terminated_under_the_app_are_503_not_500(
    postgres_url: str,
) -> None:
    key = await _provisioned(postgres_url)
    async with serving(Database(postgres_url), postgres_url) as client:
        for entry in [KEY_CALLS[0], ADMIN_CALLS[0]]:
            assert (await call(client, KEY_CALLS[0], key)).status_code == 200  # pool is warm
            listed, terminated = await terminate_other_backends(postgres_url)
            assert listed > 0 and terminated == listed
            assert_unavailable(await call(client, entry, key), entry[3])
        # The pool starts over with new connections: the next call is served.
        assert (await call(client, KEY_CALLS[0], key)).status_code == 200


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
async def test_group_commit_reports_an_unreachable_database_as_503(
    kind: str, tmp_path: Path
) -> None:
    """The write path that runs on the drivers themselves (db/batch.py), on both databases."""
    url = (
        "postgresql://postgres@127.0.0.1:1/test"
        if kind == "postgresql"
        else f"sqlite:///{tmp_path}"
    )
    db = Database(url)
    writes = GroupCommit(db)

    async def op(conn: Any) -> int:
        return int((await conn.execute(sa.text("SELECT 1"))).scalar_one())

    try:
        with pytest.raises(ServiceUnavailable):
            await writes.run(op)
    finally:
        await writes.close()
        await db.close()
