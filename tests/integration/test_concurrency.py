"""Concurrent holds on one wallet never overdraw it: in one process and across processes,
on SQLite and PostgreSQL, checked against the ledger invariant afterwards."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bytespike.billing.ledger import Balances
from bytespike.errors import InsufficientBalance
from tests.integration.ledger_support import balances, funded_wallet, place, problems, usd

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3


async def test_200_concurrent_holds_never_overdraw(ctx):
    wallet = await funded_wallet(ctx, "50")
    results = await asyncio.gather(
        *(place(ctx, wallet, "1") for _ in range(200)), return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 50
    assert sum(isinstance(r, InsufficientBalance) for r in results) == 150
    assert await balances(ctx, wallet) == Balances(0, usd("50"), 0, usd("50"), 0)
    assert await problems(ctx, wallet) == []


async def run_workers(url: str, *jobs: str) -> list[list[dict[str, int]]]:
    """Start WORKERS processes, release them together; each runs `jobs` and returns a tally
    per job. Result: for each job, the tallies of every worker."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.ledger_worker",
            url,
            str(seed),
            *jobs,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for seed in range(WORKERS)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stderr is not None
            ready = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert ready == b"ready\n", (ready, await proc.stderr.read())
        outputs = await asyncio.wait_for(
            asyncio.gather(*(proc.communicate(b"go\n") for proc in procs)), 60
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    per_worker = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    return [list(job) for job in zip(*per_worker, strict=True)]


async def test_many_processes_never_overdraw_and_keep_the_books(ctx):
    """Several OS processes, each with its own Database, on one SQLite file or PostgreSQL
    database: first only holds on a wallet that affords 50 of them, then a mix of place,
    settle (under, at and over the hold), release and abandoned holds on a second wallet."""
    only_holds = await funded_wallet(ctx, "50")
    mixed = await funded_wallet(ctx, "20", username="bob")
    placing, mixing = await run_workers(
        ctx.settings.database_url, f"{only_holds}:place:30", f"{mixed}:mix:40"
    )

    assert sum(t["placed"] for t in placing) == 50
    assert sum(t["refused"] for t in placing) == WORKERS * 30 - 50
    assert await balances(ctx, only_holds) == Balances(0, usd("50"), 0, usd("50"), 0)
    assert await problems(ctx, only_holds) == []

    after = await balances(ctx, mixed)
    assert sum(t["placed"] for t in mixing) > 0
    assert sum(t["refused"] for t in mixing) > 0, "the wallet should have run dry at times"
    assert after.spent == sum(t["charged"] for t in mixing)
    assert after.held == sum(t["pending"] for t in mixing)
    assert after.available >= 0
    assert after.available + after.held + after.spent == usd("20")
    assert await problems(ctx, mixed) == []
