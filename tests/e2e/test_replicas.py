"""Two real `bytespike serve` processes on one PostgreSQL database and one Redis: what the
CLI changes (revoking a key, pausing an org) holds on both from the next request, and the
per-key rate limit is one count shared by both."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike import catalog
from bytespike.context import Context
from bytespike.db.engine import Database
from bytespike.settings import Settings
from tests.conftest import FakeClock, _truncate
from tests.factories import add_member, make_key, make_org, make_user, top_up
from tests.services import REDIS_URL, require

BYTESPIKE = str(Path(sys.executable).with_name("bytespike"))
ACCOUNT = "/api/v1/me/account"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def replicas(env: dict[str, str], logs: Path, count: int = 2) -> Iterator[list[str]]:
    """Start `count` servers and yield their base URLs once each answers /healthz."""
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for i in range(count):
            port = free_port()
            with (logs / f"serve-{i}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [BYTESPIKE, "serve", "--host", "127.0.0.1", "--port", str(port)],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls, strict=True):
            wait_until_ready(proc, url, logs)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until_ready(proc: subprocess.Popen[bytes], url: str, logs: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = "\n".join(p.read_text() for p in logs.glob("serve-*.log"))
            pytest.fail(f"bytespike serve exited with {proc.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"bytespike serve at {url} was not ready within 30s")


def cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([BYTESPIKE, *args, "--json"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()


def statuses(urls: list[str], key: str) -> list[int]:
    return [
        httpx.get(url + ACCOUNT, headers={"x-api-key": key}, timeout=5).status_code for url in urls
    ]


async def seed(url: str) -> dict[str, Any]:
    """Users, an org and keys, made in-process (the CLI is exercised where it matters)."""
    settings = Settings(database_url=url, redis_url=None)
    ctx = Context(settings=settings, db=Database(url), catalog=catalog.load(), clock=FakeClock())
    try:
        async with ctx.db.write() as conn:
            # Redis counts per key id; ids unique to this run keep concurrent or recent runs
            # (which restart the ids) from sharing a count.
            start = random.randrange(1_000_000, 1_000_000_000)  # noqa: S311 - not a secret
            await conn.execute(sa.text(f"ALTER SEQUENCE api_keys_id_seq RESTART WITH {start}"))
        await make_user(ctx, "ada")
        await make_org(ctx, "Dosia AI")
        await add_member(ctx, "Dosia AI", "ada", "owner")
        await top_up(ctx, "25", user="ada")
        await top_up(ctx, "25", org="Dosia AI")
        return {
            "in_org": await make_key(ctx, org="Dosia AI"),
            "to_revoke": await make_key(ctx),
            "limited": await make_key(ctx, rate_limit=4),
        }
    finally:
        await ctx.db.close()


@pytest.fixture
def env(postgres_database: str) -> dict[str, str]:
    require(REDIS_URL, 6379, "Redis")
    asyncio.run(_truncate(postgres_database))  # migrated by the fixture; serve does not
    return {
        **os.environ,
        "BYTESPIKE_DATABASE_URL": postgres_database,
        "BYTESPIKE_REDIS_URL": REDIS_URL,
        "BYTESPIKE_LOG_LEVEL": "WARNING",
        "BYTESPIKE_SECRET_KEY": "test-secret-key",
    }


def test_two_replicas_agree_on_revocation_pauses_and_the_rate_limit(env, tmp_path):
    keys = asyncio.run(seed(env["BYTESPIKE_DATABASE_URL"]))
    with replicas(env, tmp_path) as urls:
        in_org, to_revoke = keys["in_org"], keys["to_revoke"]
        assert statuses(urls, in_org["key"]) == [200, 200]
        assert statuses(urls, to_revoke["key"]) == [200, 200]

        cli(env, "keys", "revoke", str(to_revoke["id"]))
        assert statuses(urls, to_revoke["key"]) == [401, 401]

        cli(env, "orgs", "pause", "--org", "Dosia AI")
        assert statuses(urls, in_org["key"]) == [403, 403]
        assert statuses(urls, keys["to_revoke"]["key"]) == [401, 401]
        cli(env, "orgs", "resume", "--org", str(in_org["org_id"]))
        assert statuses(urls, in_org["key"]) == [200, 200]

        limited = keys["limited"]["key"]
        if time.time() % 60 > 55:  # the four calls and the fifth must share one window
            time.sleep(60 - time.time() % 60)
        assert statuses(urls, limited) + statuses(urls, limited) == [200, 200, 200, 200]
        fifth = httpx.get(urls[1] + ACCOUNT, headers={"x-api-key": limited}, timeout=5)
        assert fifth.status_code == 429
        assert fifth.headers["x-ratelimit-remaining-requests"] == "0"
        assert statuses(urls, limited) == [429, 429]
