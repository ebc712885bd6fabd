"""Background loop that expires holds past their TTL, so a crashed request's money returns.

Failure policy: a failed sweep is logged and retried on the next tick; meanwhile stranded
money stays held (never spendable twice), which is the safe side.
"""

from __future__ import annotations

import logging

from bytespike import periodic
from bytespike.billing import holds
from bytespike.context import Context

log = logging.getLogger(__name__)


async def sweep_once(ctx: Context) -> int:
    async with ctx.db.write() as conn:
        return await holds.expire_due(conn, now=ctx.clock.now())


async def run(ctx: Context, interval: float) -> None:
    await periodic.every(interval, lambda: sweep_once(ctx), log, "expired holds")
