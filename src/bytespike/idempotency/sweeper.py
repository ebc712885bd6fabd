"""Background loop that deletes idempotency claims past their expiry (answers kept 24 h,
claims of calls that died). An expired row already counts as absent (claims.claim takes
it anew): sweeping only keeps the table small.

Failure policy: a failed sweep is logged and retried on the next tick.
"""

from __future__ import annotations

import logging

from bytespike import periodic
from bytespike.context import Context
from bytespike.idempotency import repo

INTERVAL_SECONDS = 60.0

log = logging.getLogger(__name__)


async def sweep_once(ctx: Context) -> int:
    async with ctx.db.write() as conn:
        return await repo.expire_due(conn, now=ctx.clock.now())


async def run(ctx: Context, interval: float = INTERVAL_SECONDS) -> None:
    await periodic.every(interval, lambda: sweep_once(ctx), log, "expired idempotency keys")
