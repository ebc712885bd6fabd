"""`bytespike serve --workers 2`, a real process, on SQLite and PostgreSQL: a key's rate
limit is one count across both workers (through the shared file, or through Redis), a key
changed through the CLI is refused by both at their next request, and a storm of calls
through both leaves the books exact, its low-balance page sent once by two dispatchers.
The embedded default is migrated once, before the workers start; a worker that cannot
start stops the server; a bad rate-limit file is one error line.

Which worker answered is read from the access log: each worker's lines carry its pid."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from bytespike.billing import ledger, pricing
from bytespike.keys import service as keys
from bytespike.upstream.base import Usage
from bytespike.webhooks import service as webhooks
from tests.e2e.workers_support import (
    WORKERS,
    all_logged,
    all_workers_up,
    answered_by,
    fire,
    log_lines,
    worker_env,
)
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.integration.webhooks_support import receiving, wait_for
from tests.processes import BYTESPIKE, clean_env, free_port, serving


async def cli(env: dict[str, str], *args: str) -> None:
    """A CLI command, awaited (the receiver of the webhook test runs on this loop)."""
    proc = await asyncio.create_subprocess_exec(
        BYTESPIKE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()


async def one_window_left(seconds: float) -> None:
    """Wait for the next minute if this one has less than `seconds` left: the calls that
    count against one fixed window must all fall in it."""
    if time.time() % 60 > 60 - seconds:
        await asyncio.sleep(60 - time.time() % 60 + 0.1)


@pytest.mark.parametrize("limits", ["file", "redis"])
async def test_a_keys_rate_limit_holds_across_two_workers(ctx, db_url, limits, tmp_path):
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx, rate_limit=60))["key"]
    env = worker_env(db_url, redis=limits == "redis")
    with serving(env, tmp_path, workers=WORKERS) as (base,):
        await all_workers_up(tmp_path)
        await one_window_left(20)
        answers = await fire(base, key, 120)
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {200, 429}, statuses
    assert abs(statuses[200] - 60) <= 6, statuses  # within 10 % of the limit
    served = answered_by(tmp_path)
    workers = {pid for pid, _ in served}
    assert len(workers) == WORKERS, served
    assert all(served[pid, 200] for pid in workers), f"a worker answered no 200: {served}"
    assert sum(served.values()) == 120


async def test_a_key_changed_through_the_cli_is_refused_by_both_workers(ctx, db_url, tmp_path):
    """Each worker caches keys; a change made by the CLI (another process) still applies in
    both from their next request: revoked, its model removed, its org paused and resumed."""
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", "owner")
    await top_up(ctx, "10", org="Dosia AI")
    revoked = await make_key(ctx, rate_limit=100_000)
    narrowed = await make_key(ctx, rate_limit=100_000, models=[("mock", None), ("gpt-5-4", None)])
    in_org = await make_key(ctx, org="Dosia AI", rate_limit=100_000)
    env = worker_env(db_url)
    with serving(env, tmp_path, workers=WORKERS) as (base,):
        await all_workers_up(tmp_path)
        workers = {r["worker"] for r in log_lines(tmp_path) if "worker" in r}
        # Every key used in both workers first: each worker's key cache holds them.
        for minted in (revoked, narrowed, in_org):
            assert {a.status_code for a in await fire(base, minted["key"], 60)} == {200}
        fired = 3 * 60
        await all_logged(tmp_path, fired)
        assert {pid for pid, _ in answered_by(tmp_path)} == workers

        async def after(*command: str, key: dict[str, Any]) -> list[httpx.Response]:
            """The key's answers after `command`, having checked both workers gave them."""
            nonlocal fired
            seen = len(log_lines(tmp_path))  # every earlier call's line is in (all_logged)
            await cli(env, *command)
            answers = await fire(base, key["key"], 60)
            fired += len(answers)
            await all_logged(tmp_path, fired)
            statuses = {a.status_code for a in answers}
            assert set(answered_by(tmp_path, seen)) == {(p, s) for p in workers for s in statuses}
            return answers

        answers = await after("keys", "revoke", str(revoked["id"]), key=revoked)
        assert {a.status_code for a in answers} == {401}
        answers = await after(
            "keys", "update", str(narrowed["id"]), "--remove-model", "mock", key=narrowed
        )
        assert {a.json()["error"]["code"] for a in answers} == {"model_not_allowed"}
        answers = await after("orgs", "pause", "--org", "Dosia AI", key=in_org)
        assert {a.status_code for a in answers} == {403}
        assert {a.json()["error"]["message"] for a in answers} == {"this key's org is paused"}
        answers = await after("orgs", "resume", "--org", "Dosia AI", key=in_org)
        assert {a.status_code for a in answers} == {200}


async def test_a_storm_through_two_workers_keeps_the_books_exact(ctx, db_url, tmp_path):
    """300 calls at once through both workers on a wallet that pays for far fewer: each is
    200 or 402 (never a 500, on SQLite neither: the workers' writes queue on its lock), the
    wallet is charged exactly the usage answered, `ledger verify` finds nothing, and the one
    low-balance crossing is paged once though both workers run a dispatcher."""
    await make_user(ctx, "bo")
    await top_up(ctx, "0.02", user="bo")
    minted = await make_key(ctx, "bo", rate_limit=100_000)
    env = worker_env(
        db_url, BYTESPIKE_WEBHOOK_ALLOW_PRIVATE="1", BYTESPIKE_WEBHOOK_POLL_SECONDS="0.1"
    )
    async with receiving() as receiver:
        ctx.settings.webhook_allow_private = True
        created = await webhooks.create(
            ctx,
            await keys.resolve(ctx, minted["key"]),
            url=f"{receiver.url}/hook",
            event_types=["system.balance.notify.dispatched"],
            description=None,
        )
        receiver.secrets["/hook"] = created["secret"]
        # Just under the top-up, so the first charge crosses it: how many of the 300 calls
        # succeed depends on timing (a loaded machine settles slower and refuses more), and a
        # lower threshold left the crossing itself to chance.
        await cli(env, "notifications", "set", "--user", "bo", "--threshold-usd", "0.0199")
        with serving(env, tmp_path, workers=WORKERS) as (base,):
            await all_workers_up(tmp_path)
            answers = await fire(base, minted["key"], 300)
            await wait_for(receiver, 1)
            await asyncio.sleep(1.5)  # a second page would arrive in this window
        await cli(env, "ledger", "verify")

    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {200, 402}, statuses
    served = answered_by(tmp_path)
    # Seen once in CI (2026-11-28, a slow shared machine): every call answered by one worker,
    # the other up and idle; not reproduced since. Its lines say what it was doing then.
    others = [r for r in log_lines(tmp_path) if r.get("msg") != "request"]
    assert len({pid for pid, _ in served}) == WORKERS, f"{served}\n{others}"
    mock = ctx.catalog.get("mock")
    assert mock is not None
    owed = 0
    for answer in answers:
        if answer.status_code == 200:
            usage = answer.json()["usage"]
            owed += pricing.charge(mock, Usage(usage["prompt_tokens"], usage["completion_tokens"]))
        else:
            assert answer.json()["error"]["code"] == "insufficient_balance"
    wallet = await wallet_of(ctx, user="bo")
    async with ctx.db.read() as conn:
        balances = await ledger.balances(conn, wallet)
        assert await ledger.verify(conn, wallet) == []
    assert balances.held == 0 and balances.available >= 0
    assert balances.spent == owed <= 20_000
    assert len(receiver.received) == 1 and receiver.received[0].verified


@pytest.mark.parametrize("workers", [1, WORKERS])
def test_a_redis_url_that_is_not_one_is_one_error_line(workers, tmp_path):
    """Refused before any worker starts (it was a traceback from the first worker, and with
    several, uvicorn's restarts of each): exit code 1, one line naming the setting."""
    env = clean_env(BYTESPIKE_REDIS_URL="http://not-redis.invalid")
    done = subprocess.run(
        [BYTESPIKE, "serve", "--port", str(free_port()), "--workers", str(workers)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: invalid configuration: BYTESPIKE_REDIS_URL: must start with redis://, "
        "rediss://, unix://"
    ]


async def test_two_workers_start_from_nothing_on_the_embedded_default(tmp_path):
    """The embedded default is migrated once, by the supervisor, before any worker starts."""
    with serving(clean_env(BYTESPIKE_LOG_LEVEL="INFO"), tmp_path, workers=WORKERS):
        await all_workers_up(tmp_path)  # and /healthz answered
    records = log_lines(tmp_path)
    migrations = [r for r in records if r["msg"].startswith("Running upgrade  -> 0001")]
    assert len(migrations) == 1 and "worker" not in migrations[0]
    assert (tmp_path / "data" / "bytespike.db").is_file()


@pytest.mark.parametrize("workers", [1, WORKERS])
def test_a_rate_limit_file_that_is_not_one_is_one_error_line(workers, tmp_path):
    (tmp_path / "notes.txt").write_text("not a rate-limit table")
    env = clean_env(BYTESPIKE_RATE_LIMIT_FILE=str(tmp_path / "notes.txt"))
    done = subprocess.run(
        [BYTESPIKE, "serve", "--port", str(free_port()), "--workers", str(workers)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert errors == [
        f"error: BYTESPIKE_RATE_LIMIT_FILE: {tmp_path / 'notes.txt'} is not a bytespike "
        "rate-limit table of 65536 slots"
    ]
