"""Two real `bytespike serve` processes on one PostgreSQL database and one Redis: what the
CLI changes (revoking a key, pausing an org) holds on both from the next request, the
per-key rate limit is one count shared by both, and a storm of calls through both on one
wallet never overdraws it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest

from bytespike import catalog
from bytespike.billing import ledger, pricing
from bytespike.billing.ledger import Balances
from bytespike.context import Context
from bytespike.db.engine import Database
from bytespike.settings import Settings
from bytespike.upstream.base import Usage
from tests.conftest import ADMIN_TOKEN, FakeClock, _truncate
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.processes import BYTESPIKE, serving
from tests.services import REDIS_URL, require

ACCOUNT = "/api/v1/me/account"


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
        await make_user(ctx, "ada")
        await make_org(ctx, "Dosia AI")
        await add_member(ctx, "Dosia AI", "ada", "owner")
        await top_up(ctx, "25", user="ada")
        await top_up(ctx, "25", org="Dosia AI")
        return {
            "in_org": await make_key(ctx, org="Dosia AI"),
            "to_revoke": await make_key(ctx),
            "admin_revoked": await make_key(ctx),
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
        "BYTESPIKE_ADMIN_TOKEN": ADMIN_TOKEN,
        # Redis counts per key id, and every run restarts the ids: a namespace of its own.
        "BYTESPIKE_REDIS_PREFIX": f"test-{uuid.uuid4().hex}",
    }


def test_two_replicas_agree_on_revocation_pauses_and_the_rate_limit(env, tmp_path):
    keys = asyncio.run(seed(env["BYTESPIKE_DATABASE_URL"]))
    with serving(env, tmp_path, count=2) as urls:
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

        # The same through the admin API of one replica, seen by the other.
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        revoked = keys["admin_revoked"]
        assert statuses(urls, revoked["key"]) == [200, 200]
        url = f"{urls[0]}/api/v1/admin/keys/{revoked['id']}/revoke"
        assert httpx.post(url, headers=admin, timeout=5).status_code == 200
        assert statuses(urls, revoked["key"]) == [401, 401]
        pause = f"{urls[1]}/api/v1/admin/orgs/{in_org['org_id']}/pause"
        assert httpx.post(pause, headers=admin, timeout=5).status_code == 200
        assert statuses(urls, in_org["key"]) == [403, 403]
        resume = f"{urls[0]}/api/v1/admin/orgs/Dosia AI/resume"
        assert httpx.post(resume, headers=admin, timeout=5).status_code == 200
        assert statuses(urls, in_org["key"]) == [200, 200]

        limited = keys["limited"]["key"]
        if time.time() % 60 > 55:  # the four calls and the fifth must share one window
            time.sleep(60 - time.time() % 60)
        assert statuses(urls, limited) + statuses(urls, limited) == [200, 200, 200, 200]
        fifth = httpx.get(urls[1] + ACCOUNT, headers={"x-api-key": limited}, timeout=5)
        assert fifth.status_code == 429
        assert fifth.headers["x-ratelimit-remaining-requests"] == "0"
        assert statuses(urls, limited) == [429, 429]


async def storm(urls: list[str], key: str, calls: int) -> list[httpx.Response]:
    """`calls` chat calls at once, alternating between the replicas."""
    body = {"model": "mock", "max_tokens": 200, "messages": [{"role": "user", "content": "ping"}]}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{urls[i % len(urls)]}/v1/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {key}"},
                )
                for i in range(calls)
            )
        )


async def books(url: str, username: str) -> tuple[Balances, list[str]]:
    settings = Settings(database_url=url, redis_url=None)
    ctx = Context(settings=settings, db=Database(url), catalog=catalog.load(), clock=FakeClock())
    try:
        wallet = await wallet_of(ctx, user=username)
        async with ctx.db.read() as conn:
            return await ledger.balances(conn, wallet), await ledger.verify(conn, wallet)
    finally:
        await ctx.db.close()


def test_two_replicas_storming_one_wallet_never_overdraw_it(env, tmp_path):
    """300 calls at once through two replicas on a wallet that pays for far fewer: each is
    answered 200 or 402, the wallet never goes below zero, and it is charged exactly the
    usage of the calls answered."""

    async def fund() -> str:
        settings = Settings(database_url=env["BYTESPIKE_DATABASE_URL"], redis_url=None)
        db = Database(settings.database_url)
        ctx = Context(settings=settings, db=db, catalog=catalog.load(), clock=FakeClock())
        try:
            await make_user(ctx, "bo")
            await top_up(ctx, "0.02", user="bo")
            return str((await make_key(ctx, "bo", rate_limit=100_000))["key"])
        finally:
            await db.close()

    key = asyncio.run(fund())
    with serving(env, tmp_path, count=2) as urls:
        answers = asyncio.run(storm(urls, key, 300))
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 402}, sorted(set(statuses))
    mock = catalog.load().get("mock")
    assert mock is not None
    owed = 0
    for answer in answers:
        if answer.status_code == 200:
            usage = answer.json()["usage"]
            owed += pricing.charge(mock, Usage(usage["prompt_tokens"], usage["completion_tokens"]))
        else:
            assert answer.json()["error"]["code"] == "insufficient_balance"
    balances, problems = asyncio.run(books(env["BYTESPIKE_DATABASE_URL"], "bo"))
    assert problems == []
    assert balances.held == 0 and balances.available >= 0
    assert balances.spent == owed <= 20_000
