"""The background sweeps' loop: expired holds (billing/sweeper.py), idempotency keys
(idempotency/sweeper.py) and stored responses (responses/sweeper.py), each its own task.

Failure policy: a failed sweep is logged and retried on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def every(
    interval: float, sweep: Callable[[], Awaitable[int]], log: logging.Logger, what: str
) -> None:
    """Run `sweep` now and every `interval` seconds after it ends, forever: it returns how
    many of `what` it swept ("expired holds", say), logged when not 0; an error is logged."""
    while True:
        try:
            if count := await sweep():
                log.info("%s swept", what, extra={"count": count})
        except Exception:
            log.exception("sweeping %s failed", what)
        await asyncio.sleep(interval)
