"""What one rate-limit hit costs, per backend `serve` can count with: in-process memory (one
worker), the workers' shared file (`ratelimit/shared.py`, `serve --workers N` without
Redis), Redis, and the alternative not taken, the same count kept in a SQLite file.

    .venv/bin/python bench/limiter.py [--hits 50000] [--processes 2] [--redis URL]

For each backend: `hits` hits one after another in one process (alone), then in
`processes` processes at once on the same key (contended: they share the lock, or the
server). Prints microseconds per hit, wall and CPU (`time.process_time`), each the mean
over the processes; a hit is on the hot path of every call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from bytespike.ratelimit.base import Decision, decide, window_of
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.ratelimit.shared import SharedRateLimiter

BACKENDS = ("memory", "shared", "redis", "sqlite")
REDIS_URL = "redis://127.0.0.1:6379/15"


class Limiter(Protocol):
    async def hit(self, subject: str, limit: int) -> Decision: ...

    async def close(self) -> None: ...


class SqliteLimiter:
    """The count as one UPSERT in a SQLite file (WAL, no fsync): what the file-backed
    limiter would cost done with SQLite instead of a mapping and a lock."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hits (subject TEXT PRIMARY KEY, win INT, n INT)"
        )

    async def hit(self, subject: str, limit: int) -> Decision:
        now = time.time()
        (count,) = self._db.execute(
            "INSERT INTO hits VALUES (?, ?, 1) ON CONFLICT (subject) DO UPDATE SET "
            "n = CASE WHEN win = excluded.win THEN n + 1 ELSE 1 END, win = excluded.win "
            "RETURNING n",
            (subject, window_of(now)),
        ).fetchone()
        return decide(count, limit, now)

    async def close(self) -> None:
        self._db.close()


def build(backend: str, place: Path, redis_url: str, prefix: str) -> Limiter:
    if backend == "memory":
        return MemoryRateLimiter()
    if backend == "shared":
        return SharedRateLimiter(place / "ratelimit")
    if backend == "sqlite":
        return SqliteLimiter(place / "ratelimit.db")
    from bytespike.ratelimit.redis import RedisRateLimiter

    return RedisRateLimiter(redis_url, prefix=prefix)


async def hammer(limiter: Limiter, hits: int) -> dict[str, float]:
    await limiter.hit("key:warm-up", 10)  # connections, plans and pages, before the clock
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(hits):
        await limiter.hit("key:1", 1_000_000_000)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await limiter.close()
    return {"wall_us": wall / hits * 1e6, "cpu_us": cpu / hits * 1e6}


def child(argv: list[str]) -> None:
    backend, place, hits, redis_url, prefix = argv
    limiter = build(backend, Path(place), redis_url, prefix)
    print(json.dumps(asyncio.run(hammer(limiter, int(hits)))))


def measure(backend: str, hits: int, processes: int, redis_url: str) -> dict[str, float]:
    """The mean per hit over `processes` processes started together on one table."""
    with tempfile.TemporaryDirectory(prefix="bytespike-limiter-") as place:
        args = [backend, place, str(hits), redis_url, f"bench-limiter:{uuid.uuid4().hex}"]
        # A fixed program (this interpreter and this file); the arguments are our own.
        procs = [
            subprocess.Popen(  # noqa: S603
                [sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True
            )
            for _ in range(processes)
        ]
        outcomes = [json.loads(proc.communicate()[0]) for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"{backend}: a process failed")
    return {k: sum(o[k] for o in outcomes) / processes for k in ("wall_us", "cpu_us")}


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=50_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--redis", default=REDIS_URL)
    opts = parser.parse_args()
    print(f"| backend | alone µs/hit (wall / CPU) | {opts.processes} processes (wall / CPU) |")
    print("|---|--:|--:|")
    for backend in BACKENDS:
        if backend == "redis" and not reachable(opts.redis):
            print(f"| redis | not reachable at {opts.redis} | |")
            continue
        alone = measure(backend, opts.hits, 1, opts.redis)
        # Memory shares nothing between processes: its row is what the processes' mere
        # running side by side costs, the floor for the others.
        together = measure(backend, opts.hits, opts.processes, opts.redis)
        cells = [f"{r['wall_us']:.1f} / {r['cpu_us']:.1f}" for r in (alone, together)]
        print(f"| {backend} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1).close()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
