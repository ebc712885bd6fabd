"""A separate OS process hammering one wallet, for the cross-process concurrency tests.

Run as `python -m tests.integration.ledger_worker URL SEED WALLET:MODE:ATTEMPTS...`. It
prints "ready", waits for a line on stdin (so every worker starts at once), runs each job
in turn with its own Database, then prints one JSON line: a tally per job.

- mode "place": ATTEMPTS holds of 1 USD, 8 at a time;
- mode "mix": ATTEMPTS rounds of place, then settle (under, at or over the hold), release,
  or leave pending, with a few concurrent rounds at a time.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import UTC, datetime, timedelta

from bytespike.billing import holds
from bytespike.db.engine import Database
from bytespike.errors import InsufficientBalance

TTL = timedelta(hours=1)
CONCURRENCY = 8


class Tally:
    def __init__(self) -> None:
        self.placed = 0
        self.refused = 0
        self.charged = 0
        self.pending = 0  # micros left in holds this worker did not close


async def place(db: Database, wallet: int, amount: int, tally: Tally) -> int | None:
    try:
        async with db.write() as conn:
            placed = await holds.place(conn, wallet, amount, now=datetime.now(UTC), ttl=TTL)
    except InsufficientBalance:
        tally.refused += 1
        return None
    tally.placed += 1
    return placed.hold_id


async def round_trip(db: Database, wallet: int, rng: random.Random, tally: Tally) -> None:
    amount = rng.randrange(500_000, 2_000_001)
    hold = await place(db, wallet, amount, tally)
    if hold is None:
        return
    await asyncio.sleep(0)
    action = rng.choice(("settle", "settle", "release", "leave"))
    if action == "leave":
        tally.pending += amount
        return
    async with db.write() as conn:
        if action == "release":
            await holds.release(conn, hold, now=datetime.now(UTC))
        else:
            cost = rng.randrange(0, amount * 3 // 2)
            result = await holds.settle(conn, hold, cost, now=datetime.now(UTC))
            tally.charged += result.charged


async def run(url: str, wallet: int, mode: str, attempts: int, seed: int) -> Tally:
    db = Database(url, pool_size=CONCURRENCY // 2)
    rng = random.Random(seed)  # noqa: S311 - reproducible load, not a secret
    tally = Tally()
    queue = list(range(attempts))

    async def lane() -> None:
        while queue:
            queue.pop()
            if mode == "place":
                await place(db, wallet, 1_000_000, tally)
            else:
                await round_trip(db, wallet, rng, tally)

    try:
        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    finally:
        await db.close()
    return tally


def main() -> None:
    url, seed, *jobs = sys.argv[1:]
    print("ready", flush=True)
    sys.stdin.readline()
    tallies = []
    for job in jobs:
        wallet, mode, attempts = job.split(":")
        tally = asyncio.run(run(url, int(wallet), mode, int(attempts), int(seed)))
        tallies.append(vars(tally))
    print(json.dumps(tallies), flush=True)


if __name__ == "__main__":
    main()
