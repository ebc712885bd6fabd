"""What a metered call cannot go below on PostgreSQL: its two commits, timed alone.

    python bench/pg_floor.py [--calls 2000] [--postgres URL]

A metered call commits twice before it answers: the hold (before the upstream call, so
that no other call or replica can spend the same money) and the settlement (before the
answer, so that the account shows it at once). On PostgreSQL each is one statement and one
round trip (billing/fused.py). This runs those exact statements back to back on one
connection, with nothing else on the machine's event loop, against a throw-away database,
and prints the median of each beside a bare `SELECT 1` round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import gateway
from databases import DEFAULT_POSTGRES_SERVER
from fused_calls import OUTCOME, hold_request, the_account, throwaway

from bytespike import catalog
from bytespike.billing import metering
from bytespike.clock import SystemClock
from bytespike.db.direct import PgDirect, Plans
from bytespike.db.engine import Database
from bytespike.upstream.base import Usage


async def measure(url: str, catalog_path: Path, calls: int) -> dict[str, float]:
    db = Database(url)
    model = catalog.load(catalog_path).get(gateway.MODEL)
    assert model is not None
    timings: dict[str, list[float]] = {"SELECT 1": [], "reserve": [], "settle": []}
    try:
        async with db.batch() as (_conn, raw):
            key_id, wallet_id = await the_account(raw)
            direct = PgDirect(raw, Plans(db.dialect))
            for _ in range(calls):
                now = SystemClock().now()
                hold = hold_request(model, key_id, wallet_id, now)
                reserve = metering.fused_reserve(hold)
                assert reserve is not None
                started = time.perf_counter()
                (placed,) = await direct.values(reserve.statement, [reserve.params])
                timings["reserve"].append(time.perf_counter() - started)
                assert placed is not None, "the fast path was not taken"
                ticket = metering.ticket_or_raise(reserve.result(placed))
                settle = metering.fused_settle(ticket, Usage(9, 16), OUTCOME, now=now)
                assert settle is not None
                started = time.perf_counter()
                (settled,) = await direct.values(settle.statement, [settle.params])
                timings["settle"].append(time.perf_counter() - started)
                assert settled is not None, "the fast path was not taken"
                started = time.perf_counter()
                await raw.fetchval("SELECT 1")
                timings["SELECT 1"].append(time.perf_counter() - started)
    finally:
        await db.close()
    warm = calls // 10  # the first calls prepare statements and warm caches
    return {name: statistics.median(ts[warm:]) * 1000 for name, ts in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES_SERVER)
    args = parser.parse_args()
    with throwaway(args.postgres, "bytespike-floor-") as (url, catalog_path):
        medians = asyncio.run(measure(url, catalog_path, args.calls))
    print(f"median of {args.calls} calls, one connection, durable commits:")
    for name, ms in medians.items():
        print(f"  {name:<9} {ms:.3f} ms")
    print(f"  hold + settlement: {medians['reserve'] + medians['settle']:.3f} ms per call")


if __name__ == "__main__":
    main()
