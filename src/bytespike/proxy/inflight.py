"""Metered calls under way, counted, so a stopping server can wait for each to settle.

A plain counter on the event loop's one thread: entering and leaving cost an addition
each, and nothing is locked per call or per chunk. Only a stopping server waits, on an
event made when it starts to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class InFlight:
    """How many metered calls (and the streams they answered with) are not settled yet."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    def __enter__(self) -> None:
        self.enter()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.leave()

    async def settled(self, within: float) -> int:
        """Wait, at most `within` seconds, until none is under way; how many still are."""
        if self.count:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), within)
        return self.count
