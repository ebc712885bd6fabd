"""What one statement per run saves PostgreSQL: a batch's reserves and settlements sent as
one execution each per call (pipelined) or as one statement for the whole run.

    python bench/pg_runs.py [--sizes 1,2,3,4,8,16] [--calls 1600] [--rounds 6] [--postgres URL]

A group-commit batch on PostgreSQL sends its fused reserves, then its fused settlements,
either pipelined, one execution of RESERVE / SETTLE per call, or as one execution of
RESERVE_MANY / SETTLE_MANY for the run (billing/fused.py, db/batch.py's MANY_FROM), each
run its own transaction, as a batch sends it. This runs both ways, on one connection to a
throw-away database, and reads the server process's CPU from /proc: PostgreSQL CPU per
call for each run length, as the median of interleaved rounds, and their ratio; and the
same for this process's own CPU (`time.process_time`): what encoding the arguments,
sending them and reading the rows back costs the gateway's side of those statements.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import gateway
from databases import DEFAULT_POSTGRES_SERVER
from fused_calls import OUTCOME, hold_request, the_account, throwaway

from bytespike import catalog
from bytespike.billing import metering
from bytespike.clock import SystemClock
from bytespike.db.batch import Fused
from bytespike.db.direct import PgDirect, Plans
from bytespike.db.engine import Database
from bytespike.upstream.base import Usage

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def measure(
    url: str, catalog_path: Path, sizes: list[int], calls: int, rounds: int
) -> dict[int, tuple[float, float]]:
    """PostgreSQL CPU ms per call by run length: (pipelined, one statement), each printed
    with this process's CPU ms per call."""
    db = Database(url)
    model = catalog.load(catalog_path).get(gateway.MODEL)
    assert model is not None
    results: dict[int, tuple[float, float]] = {}
    try:
        async with db.batch() as (_conn, raw):
            key_id, wallet_id = await the_account(raw)
            server = await raw.fetchval("SELECT pg_backend_pid()")
            direct = PgDirect(raw, Plans(db.dialect))

            async def run(ops: list[Fused[Any]], as_one: bool) -> list[Any]:
                params, many = [op.params for op in ops], ops[0].many
                if as_one and many is not None:
                    values = await direct.many(many, params)
                else:
                    values = await direct.values(ops[0].statement, params)
                assert None not in values, "the fast path was not taken"
                return values

            async def batch(size: int, as_one: bool) -> None:
                now = SystemClock().now()
                hold = hold_request(model, key_id, wallet_id, now)
                reserves = [metering.fused_reserve(hold) for _ in range(size)]
                held = await run([r for r in reserves if r], as_one)
                settles = []
                for reserve, placed in zip(reserves, held, strict=True):
                    assert reserve is not None and placed is not None, "a hold was not placed"
                    ticket = metering.ticket_or_raise(reserve.result(placed))
                    settles.append(metering.fused_settle(ticket, Usage(9, 16), OUTCOME, now=now))
                await run([s for s in settles if s], as_one)

            for size in sizes:
                per_call: dict[bool, list[float]] = {False: [], True: []}
                client: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(rounds):
                    for as_one in (False, True):
                        for _ in range(max(1, 40 // size)):  # prepare and warm up
                            await batch(size, as_one)
                        started, done = cpu_seconds(server), 0
                        ours = time.process_time()
                        while done < calls:
                            await batch(size, as_one)
                            done += size
                        per_call[as_one].append((cpu_seconds(server) - started) / done * 1000)
                        client[as_one].append((time.process_time() - ours) / done * 1000)
                results[size] = (
                    statistics.median(per_call[False]),
                    statistics.median(per_call[True]),
                )
                pipelined, one = results[size]
                ours_pipelined, ours_one = (statistics.median(client[w]) for w in (False, True))
                print(
                    f"  run of {size:>3}: pipelined {pipelined:.3f} ms, one statement"
                    f" {one:.3f} ms of PostgreSQL CPU per call ({one / pipelined:.2f}x);"
                    f" this process {ours_pipelined:.3f} ms, {ours_one:.3f} ms"
                    f" ({ours_one / ours_pipelined:.2f}x)",
                    flush=True,
                )
    finally:
        await db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,3,4,8,16")
    parser.add_argument("--calls", type=int, default=1600, help="calls per round and way")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES_SERVER)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with throwaway(args.postgres, "bytespike-runs-") as (url, catalog_path):
        print(f"PostgreSQL CPU per call, median of {args.rounds} interleaved rounds:")
        asyncio.run(measure(url, catalog_path, sizes, args.calls, args.rounds))


if __name__ == "__main__":
    main()
