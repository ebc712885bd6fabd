"""What a burst of calls over their key's rate limit costs the database: two revisions side
by side on PostgreSQL.

    python bench/refusals.py --baseline REF [--current REF] [--concurrency 64]
                             [--duration 3] [--rate-limit 60]

Each side's gateway (as in run.py's --baseline: REF in a temporary worktree, the working tree
or --current REF beside it, each on its own fresh database, provisioned by its own CLI) gets
a second key limited to `--rate-limit` calls a minute, and the load generator keeps
`--concurrency` calls in flight with it for `--duration` seconds (after 0.5 s of warm-up,
counted too): all but the first minute's allowance are refused with 429. Prints, per side,
the calls made and refused, the calls per second, and the transactions the bench database
committed or rolled back meanwhile (`pg_stat_database`, read after the statistics settle),
per refused call: what a client hammering past its limit makes the gateway do. The load
generator waits 10 ms after each refusal before its next call, so calls/s is bounded by
`--concurrency` / 0.01 s: compare transactions, not rates.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import gateway
import revisions
from measure import request_body
from servers import fake_upstream

STATS_SETTLE_SECONDS = 2.5  # backends report their counts to pg_stat at most once a second
WARMUP_SECONDS = 0.5

# Read on a connection of its own, whose transaction counts too: alike on both sides.
TRANSACTIONS = (
    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="the git ref to compare with")
    parser.add_argument("--current", help="a git ref to measure instead of the working tree")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rate-limit", type=int, default=60, help="the key's calls a minute")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    body = json.dumps(request_body(gateway.MODEL, False))
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        sides = revisions.compared(stack, args.baseline, args.current)
        (Path(tmp) / "fake").mkdir()
        upstream = stack.enter_context(fake_upstream(Path(tmp) / "fake"))
        for code in sides:
            directory = Path(tmp) / code.side
            with gateway.served(code, "postgres", directory, args.postgres, upstream.url) as up:
                env = code.env(
                    gateway.environment(
                        up.db.url, directory / "catalog.toml", up.port, upstream.url
                    )
                )
                key = gateway.cli_json(
                    env, "keys", "create", "--user", "bench", "--name", "limited",
                    "--rate-limit", str(args.rate_limit), code=code,
                )["key"]  # fmt: skip
                load = [
                    sys.executable, str(Path(__file__).with_name("loadgen.py")),
                    "--url", f"http://127.0.0.1:{up.port}/v1/chat/completions", "--body", body,
                    "--header", f"Authorization: Bearer {key}",
                    "--concurrency", str(args.concurrency), "--duration", str(args.duration),
                    "--warmup", str(WARMUP_SECONDS),
                ]  # fmt: skip
                time.sleep(STATS_SETTLE_SECONDS)
                before = up.db.count(TRANSACTIONS) or 0
                done = subprocess.run(load, capture_output=True, check=True)  # noqa: S603 -- our loadgen
                result = json.loads(done.stdout)
                time.sleep(STATS_SETTLE_SECONDS)
                spent = (up.db.count(TRANSACTIONS) or 0) - before
                calls = result["total_requests"]
                refused = calls - result["total_ok"]
                rate = calls / (args.duration + WARMUP_SECONDS)
                print(
                    f"{code.side}: {calls} calls, {refused} refused, {rate:,.0f} calls/s; "
                    f"{spent} transactions, {spent / max(refused, 1):.2f} per refused call",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
