"""Every `serve` worker runs the hold sweeper: several at once, each with its own database
connections as a worker process has, expire each due hold exactly once between them.
(Several webhook dispatchers at once: test_webhooks_delivery.py and
tests/e2e/test_worker_processes.py; both run in each worker of tests/e2e/test_serve_workers.py.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bytespike.billing import holds
from bytespike.context import Context
from bytespike.db.engine import Database
from tests.integration.ledger_support import balances, funded_wallet, place, problems, usd

SWEEPERS = 4


async def test_sweepers_of_several_workers_expire_each_hold_once(ctx, settings, clock):
    wallets = [await funded_wallet(ctx, "10", username=name) for name in ("ada", "bo", "cy")]
    for wallet in wallets:
        for _ in range(20):
            await place(ctx, wallet, "0.25", ttl=timedelta(minutes=1))
    clock.advance(minutes=2)
    workers = [
        Context(
            settings=settings, db=Database(settings.database_url), catalog=ctx.catalog, clock=clock
        )
        for _ in range(SWEEPERS)
    ]
    try:
        expired = await asyncio.gather(*(_sweep_until_idle(worker) for worker in workers))
    finally:
        for worker in workers:
            await worker.db.close()
    assert sum(expired) == 60
    if not ctx.db.is_sqlite:  # where they run side by side (SQLite's writer takes turns)
        assert sum(1 for count in expired if count) > 1, "the sweepers should share the work"
    for wallet in wallets:
        assert (await balances(ctx, wallet)).available == usd("10")
        assert (await balances(ctx, wallet)).held == 0
        assert await problems(ctx, wallet) == []


async def _sweep_until_idle(ctx: Context) -> int:
    """`sweeper.sweep_once`, in batches of 5 rather than 500, so the sweepers' batches
    interleave and race for the same holds."""
    total = 0
    while True:
        async with ctx.db.write() as conn:
            expired = await holds.expire_due(conn, now=ctx.clock.now(), limit=5)
        if not expired:
            return total
        total += expired
        await asyncio.sleep(0)  # let the other sweepers in between
