"""The background sweeps' loop: expired holds (billing/sweeper.py), idempotency keys
(idempotency/sweeper.py) and stored responses (responses/sweeper.py), each its own task.

Failure policy: a failed sweep is logged and retried on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def every(
    interval: float,
    sweep: Callable[[], Awaitable[int]],
    log: logging.Logger,
    *,
    swept: str,
    failed: str,
) -> None:
    """Run `sweep` now and every `interval` seconds after it ends, forever; log `swept`
    with the count it returns when that is not 0, `failed` with the error when it raises."""
    while True:
        try:
            if count := await sweep():
                log.info(swept, extra={"count": count})
        except Exception:
            log.exception(failed)
        await asyncio.sleep(interval)
