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
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import gateway
from databases import DEFAULT_POSTGRES_SERVER, PostgresDatabase
from revisions import INSTALLED

from bytespike import catalog
from bytespike.billing import metering
from bytespike.billing.metering import HoldRequest, Outcome
from bytespike.clock import SystemClock
from bytespike.db.direct import PgDirect, Plans
from bytespike.db.engine import Database
from bytespike.upstream.base import Usage


async def measure(url: str, catalog_path: Path, calls: int) -> dict[str, float]:
    db = Database(url)
    model = catalog.load(catalog_path).get(gateway.MODEL)
    assert model is not None
    outcome = Outcome(status="ok", http_status=200, stream=False, latency_ms=1, provider="bench")
    timings: dict[str, list[float]] = {"SELECT 1": [], "reserve": [], "settle": []}
    try:
        async with db.batch() as (_conn, raw):
            key_id, wallet_id = await raw.fetchrow(
                "SELECT api_keys.id, wallets.id FROM api_keys JOIN wallets"
                " ON wallets.user_id = api_keys.user_id"
            )
            direct = PgDirect(raw, Plans(db.dialect))
            for _ in range(calls):
                now = SystemClock().now()
                hold = HoldRequest(
                    key_id=key_id,
                    wallet_id=wallet_id,
                    model=model,
                    quota_reset=None,
                    capped=False,
                    input_tokens=40,
                    max_tokens=16,
                    now=now,
                    ttl=timedelta(minutes=10),
                )
                reserve = metering.fused_reserve(hold)
                assert reserve is not None
                started = time.perf_counter()
                (hold_id,) = await direct.values(reserve.statement, [reserve.params])
                timings["reserve"].append(time.perf_counter() - started)
                ticket = metering.ticket_or_raise(reserve.result(hold_id))
                settle = metering.fused_settle(ticket, Usage(9, 16), outcome, now=now)
                assert settle is not None
                started = time.perf_counter()
                (settled,) = await direct.values(settle.single, [settle.params])
                timings["settle"].append(time.perf_counter() - started)
                assert hold_id is not None and settled is not None, "the fast path was not taken"
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
    db = PostgresDatabase(args.postgres)
    try:
        directory = Path(tempfile.mkdtemp(prefix="bytespike-floor-"))
        # Nothing is called upstream: the catalog's entries point at a closed port.
        upstream = "http://127.0.0.1:9"
        catalog_path = gateway.write_catalog(directory, upstream, INSTALLED.shipped_catalog)
        gateway.provision(gateway.environment(db.url, catalog_path, 9, upstream))
        medians = asyncio.run(measure(db.url, catalog_path, args.calls))
    finally:
        db.drop()
    print(f"median of {args.calls} calls, one connection, durable commits:")
    for name, ms in medians.items():
        print(f"  {name:<9} {ms:.3f} ms")
    print(f"  hold + settlement: {medians['reserve'] + medians['settle']:.3f} ms per call")


if __name__ == "__main__":
    main()
