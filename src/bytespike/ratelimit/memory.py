"""In-process rate limiter: the default for a single `serve` process."""

from __future__ import annotations

import time
from collections.abc import Callable

from bytespike.ratelimit.base import Decision, decide, window_of


class MemoryRateLimiter:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._window = -1
        self._counts: dict[str, int] = {}

    async def hit(self, subject: str, limit: int) -> Decision:
        now = self._now()
        window = window_of(now)
        if window != self._window:  # a new minute: every count starts again
            self._window, self._counts = window, {}
        count = self._counts.get(subject, 0) + 1
        self._counts[subject] = count
        return decide(count, limit, now)

    async def close(self) -> None:
        return None
