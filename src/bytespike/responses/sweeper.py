"""Background loop that deletes stored responses past their retention (RETENTION,
responses/service.py). An expired one already reads as not found: sweeping only keeps the
table small. On PostgreSQL, sweepers in several processes skip each other's rows.

Failure policy: a failed sweep is logged and retried on the next tick.
"""

from __future__ import annotations

import logging

from bytespike import periodic
from bytespike.context import Context
from bytespike.responses import repo
from bytespike.responses.service import RETENTION

INTERVAL_SECONDS = 60.0
CHUNK = 500

log = logging.getLogger(__name__)


async def sweep_once(ctx: Context, *, chunk: int = CHUNK) -> int:
    """Delete every response stored more than RETENTION ago, `chunk` at a time, each chunk
    its own transaction (so a long backlog never holds SQLite's writer for long); how many."""
    before = ctx.clock.now() - RETENTION
    deleted = 0
    while True:
        async with ctx.db.write() as conn:
            gone = await repo.expire_due(conn, before=before, limit=chunk)
        deleted += gone
        if gone < chunk:
            return deleted


async def run(ctx: Context, interval: float = INTERVAL_SECONDS) -> None:
    await periodic.every(interval, lambda: sweep_once(ctx), log, "expired stored responses")
