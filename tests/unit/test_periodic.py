"""The sweepers' loop (periodic.every): a failing sweep is logged and the loop goes on; a
sweep's count is logged when it swept something, and nothing is logged when it did not."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bytespike import periodic


async def test_a_failed_sweep_is_logged_and_the_next_tick_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[int | Exception] = [RuntimeError("database away"), 0, 3]
    ran = asyncio.Event()

    async def sweep() -> int:
        if not outcomes:  # all played: wait here until cancelled
            ran.set()
            await asyncio.Event().wait()
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    log = logging.getLogger("tests.periodic")
    with caplog.at_level(logging.INFO, logger="tests.periodic"):
        task = asyncio.create_task(periodic.every(0, sweep, log, "expired things"))
        await asyncio.wait_for(ran.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    records = [(r.levelno, r.getMessage(), getattr(r, "count", None)) for r in caplog.records]
    assert records[0][:2] == (logging.ERROR, "sweeping expired things failed")
    assert caplog.records[0].exc_info is not None
    assert records[1:] == [(logging.INFO, "expired things swept", 3)]
