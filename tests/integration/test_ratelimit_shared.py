"""The workers' shared rate-limit file: processes opening one file share one exact count,
each minute starts the table over, a full table fails open, and a file that is not a table
is refused. (Its behaviour as a RateLimiter is in test_ratelimit.py's shared suite.)"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from bytespike.ratelimit.shared import SharedRateLimiter

START = 29_000_000 * 60.0  # the first second of a minute


class Now:
    def __init__(self, at: float = START) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


# One worker: `hits` hits on key:1 against `limit`; prints how many were allowed.
HAMMER = """
import asyncio, sys
from pathlib import Path
from bytespike.ratelimit.shared import SharedRateLimiter

async def main(path, hits, limit):
    limiter = SharedRateLimiter(Path(path))
    allowed = 0
    for _ in range(hits):
        allowed += (await limiter.hit("key:1", limit)).allowed
    await limiter.close()
    print(allowed)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


async def hammer(path: Path, hits: int, limit: int) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HAMMER, str(path), str(hits), str(limit), stdout=-1, stderr=-1
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return int(json.loads(out))


async def test_processes_sharing_the_file_share_one_exact_count(tmp_path):
    path = tmp_path / "ratelimit"
    processes, hits, limit = 3, 3000, 5000
    if time.time() % 60 > 50:
        await asyncio.sleep(60 - time.time() % 60)  # all the hits in one real minute
    allowed = await asyncio.gather(*(hammer(path, hits, limit) for _ in range(processes)))
    # Of 9,000 hits, exactly the limit got through: each process alone would have let all
    # its 3,000 through (9,000 in all), so the sum proves one count shared. Which process got
    # how many depends on when each started, so no share is asserted (one starting late may
    # get none: that was a flaky assertion).
    assert sum(allowed) == limit
    limiter = SharedRateLimiter(path)
    try:
        after = await limiter.hit("key:1", 100_000)
    finally:
        await limiter.close()
    assert after.remaining == 100_000 - processes * hits - 1  # no hit lost or counted twice


async def test_two_limiters_on_one_file_see_each_others_hits(tmp_path):
    now = Now(START + 10)
    one = SharedRateLimiter(tmp_path / "ratelimit", now=now)
    two = SharedRateLimiter(tmp_path / "ratelimit", now=now)
    try:
        assert (await one.hit("key:7", 3)).remaining == 2
        assert (await two.hit("key:7", 3)).remaining == 1
        assert (await one.hit("key:8", 3)).remaining == 2  # another key, its own count
        assert (await two.hit("key:7", 3)).remaining == 0
        assert not (await one.hit("key:7", 3)).allowed
        now.at = START + 60  # the next minute: whoever hits first starts the table over
        assert (await two.hit("key:7", 3)).remaining == 2
        assert (await one.hit("key:7", 3)).remaining == 1
        assert (await one.hit("key:8", 3)).remaining == 2
    finally:
        await one.close()
        await two.close()


async def test_a_hit_reading_the_previous_minute_counts_in_the_new_one(tmp_path):
    early, late = Now(START + 59.999), Now(START + 60)
    ahead = SharedRateLimiter(tmp_path / "ratelimit", now=late)
    behind = SharedRateLimiter(tmp_path / "ratelimit", now=early)
    try:
        assert (await ahead.hit("key:1", 5)).remaining == 4
        assert (await behind.hit("key:1", 5)).remaining == 3  # not a fresh count of its own
    finally:
        await ahead.close()
        await behind.close()


async def test_a_full_table_fails_open_and_says_so_once(tmp_path, caplog):
    limiter = SharedRateLimiter(tmp_path / "ratelimit", slots=64, now=Now(START + 5))
    try:
        for key in range(64):
            assert (await limiter.hit(f"key:{key}", 1)).allowed
        decisions = [await limiter.hit("key:another", 1) for _ in range(3)]
    finally:
        await limiter.close()
    assert all(d.allowed and d.remaining == 1 for d in decisions)
    warnings = [r for r in caplog.records if "table full" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_file_that_is_not_a_table_of_that_shape_is_refused(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("not a rate-limit table")
    with pytest.raises(ValueError, match="not a bytespike rate-limit table"):
        SharedRateLimiter(other)
    await SharedRateLimiter(tmp_path / "ratelimit", slots=128).close()
    with pytest.raises(ValueError, match="of 65536 slots"):
        SharedRateLimiter(tmp_path / "ratelimit")
