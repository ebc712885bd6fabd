"""Console pages over 100,000 calls: each page's server time, p50 and p95, and its size.

    .venv/bin/python bench/console.py [--calls 100000] [--requests 200] [--rounds 2]
                                      [--databases sqlite,postgres] [--postgres URL]
                                      [--out bench/results.md]

Fills a throw-away database (as bench/databases.py makes them) with a small company (ada,
an individual who owns the org Dosia AI; bob, an enterprise admin of it; root, an operator;
20 keys) and `--calls` usage records over the last 30 UTC days, with what the metered path
writes beside each (a hold and a settlement entry in the ledger, the wallet's totals, the
daily rollups, grouped as the settlement's upsert groups them); bulk inserts, then ANALYZE
on PostgreSQL (what autovacuum does within a minute of such a load). It shows the plan of
the calls' query over a range of days on each database (EXPLAIN QUERY PLAN, EXPLAIN
ANALYZE). Then, `--rounds` times, it starts a real `bytespike serve`, signs in through the
login form, and requests every console page (the usage page also over two ranges of days)
`--requests` times one after the other (after 10 unmeasured), timing each from the request
to the last byte of the answer on loopback. The target is 20 ms at p50 and 100 KB of HTML.
The results replace the section "Console pages" of `--out` (or are printed with `--out -`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import procstat
import report
import sqlalchemy as sa
from databases import DEFAULT_POSTGRES_SERVER, PostgresDatabase, SqliteDatabase
from sqlalchemy import event

from bytespike.accounts import service as accounts
from bytespike.billing import service as billing
from bytespike.console import credentials
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.keys import service as keys
from bytespike.orgs import service as orgs
from bytespike.settings import Settings
from bytespike.usage import repo as usage_repo
from bytespike.usage.tables import usage_records

HERE = Path(__file__).resolve().parent
BYTESPIKE = str(Path(sys.executable).with_name("bytespike"))
PASSWORD = "correct horse battery staple"  # noqa: S105 -- a throw-away database's
SECTION = "## Console pages"
TARGET_MS = 20.0
TARGET_BYTES = 100_000
QUIET_LOAD = 0.5  # a 1-minute load average above this: something else was running
MODELS = ("claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro", "mock")
HOLD_MICROS = 10_000  # each call's hold; its settlement gives back what it did not cost
ADMIN_PAGES = [
    "/console/admin/",
    "/console/admin/users",
    "/console/admin/orgs",
    "/console/admin/wallets?user=ada",
    "/console/admin/keys",
    "/console/admin/ledger?user=ada",
    "/console/admin/audit",
    "/console/admin/models",
]
LABEL = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def user_pages(today: date) -> list[str]:
    """ada's pages; the usage page also over the month, and over ten days of its middle (the
    calls' query must then pass over the newest ten days' calls without reading them)."""
    month = f"since={today - timedelta(days=29)}&until={today}"
    middle = f"since={today - timedelta(days=20)}&until={today - timedelta(days=11)}"
    return [
        "/console/",
        "/console/keys",
        "/console/keys/1",
        "/console/usage",
        f"/console/usage?{month}",
        f"/console/usage?{middle}",
        "/console/account/notifications",
        "/console/org",
    ]


@dataclass
class Page:
    path: str
    p50: list[float] = field(default_factory=list)  # one per round
    p95: list[float] = field(default_factory=list)
    size: int = 0


@dataclass
class Run:
    database: str
    seed_s: float
    plan: list[str]  # the calls' query over a range of days, as its database plans it
    pages: dict[str, Page]
    loads: list[str]  # load averages before each round and at the end


async def seed(url: str, calls: int) -> None:
    settings = Settings(database_url=url, secret_key="bench", redis_url=None)  # noqa: S106
    ctx = Context.build(settings)
    try:
        for name, tier in (("ada", "individual"), ("bob", "enterprise"), ("root", "individual")):
            await accounts.create_user(ctx, username=name, email=f"{name}@dosia.ai", tier=tier)
            await credentials.set_password(ctx, name, PASSWORD)
        await credentials.set_operator(ctx, "root", operator=True)
        await orgs.create(ctx, name="Dosia AI")
        await orgs.add_member(ctx, org="Dosia AI", username="ada", role="owner")
        await orgs.add_member(ctx, org="Dosia AI", username="bob", role="admin")
        await billing.top_up(ctx, amount=1_000_000_000, username="ada")
        await billing.top_up(ctx, amount=1_000_000_000, org="Dosia AI")
        for i in range(20):
            owner = "ada" if i % 2 == 0 else "bob"
            await keys.create(
                ctx, username=owner, org="Dosia AI" if owner == "bob" else None, name=f"key-{i}"
            )
        async with ctx.db.read() as conn:
            ada_wallet = await billing.owner_wallet(conn, username="ada")
            org_wallet = await billing.owner_wallet(conn, org="Dosia AI")
        await _calls(ctx, calls, {1: ada_wallet, 2: org_wallet})
        if ctx.db.dialect.name == "postgresql":
            async with ctx.db.write() as conn:  # as autovacuum does soon after such a load
                await conn.execute(sa.text("ANALYZE"))
    finally:
        await ctx.db.close()


async def _calls(ctx: Context, calls: int, wallets: dict[int, int]) -> None:
    now = datetime.now(UTC)
    rows = []
    for n in range(calls):
        key_id = 1 + n % 20
        rows.append(
            {
                "wallet_id": wallets[1] if key_id % 2 == 1 else wallets[2],
                "key_id": key_id,
                "hold_id": None,
                "model": MODELS[n % 4],
                "provider": "mock",
                "input_tokens": 100 + n % 900,
                "output_tokens": 50 + n % 300,
                "cached_tokens": 0,
                "cost_micros": 1_000 + n % 5_000,
                "status": "ok",
                "http_status": 200,
                "stream": n % 3 == 0,
                "latency_ms": 200 + n % 700,
                "created_at": now - timedelta(seconds=(calls - n) * 30 * 86400 // calls),
            }
        )
    async with ctx.db.write() as conn:
        for start in range(0, len(rows), 5_000):
            await conn.execute(sa.insert(usage_records), rows[start : start + 5_000])
        for statement in _beside_the_calls(conn.dialect.name):
            await conn.execute(sa.text(statement))


def _beside_the_calls(dialect: str) -> list[str]:
    """What the metered path writes beside each call, for all of them at once: its hold and
    its settlement in the ledger (per key and model: the dashboard's quota use reads them),
    the wallets' totals, and the daily rollups (as migration 0006 rolls up existing calls)."""
    day = (
        "(created_at AT TIME ZONE 'UTC')::date"
        if dialect == "postgresql"
        else "substr(created_at, 1, 10)"
    )
    # A hold of HOLD_MICROS, then its settlement: every call's pair, in the calls' order.
    entries = """
        INSERT INTO ledger_entries (wallet_id, kind, d_available, d_held, d_spent,
                                    d_topped_up, d_adjusted, key_id, model, created_at)
        SELECT wallet_id, kind, d_available, d_held, d_spent, 0, 0, key_id, model, created_at
        FROM (SELECT id, 0 AS step, wallet_id, 'hold' AS kind, -{hold} AS d_available,
                     {hold} AS d_held, 0 AS d_spent, key_id, model, created_at
              FROM usage_records
              UNION ALL
              SELECT id, 1, wallet_id, 'settle', {hold} - cost_micros, -{hold}, cost_micros,
                     key_id, model, created_at
              FROM usage_records) AS both_entries
        ORDER BY id, step
    """
    spent = "(SELECT sum(cost_micros) FROM usage_records u WHERE u.wallet_id = wallets.id)"
    totals = """
        UPDATE wallets SET available_micros = available_micros - coalesce({spent}, 0),
                           spent_micros = spent_micros + coalesce({spent}, 0)
    """
    # As migration 0006 rolls up existing calls; `day` is one of the two constants above.
    rollup = """
        INSERT INTO usage_daily (day, wallet_id, key_id, model, requests, input_tokens,
                                 output_tokens, cached_tokens, cost_micros, last_at)
        SELECT {day}, wallet_id, key_id, model, count(*), sum(input_tokens),
               sum(output_tokens), sum(cached_tokens), sum(cost_micros), max(created_at)
        FROM usage_records GROUP BY {day}, wallet_id, key_id, model
    """
    return [
        entries.replace("{hold}", str(HOLD_MICROS)),
        totals.replace("{spent}", spent),
        rollup.replace("{day}", day),
    ]


async def calls_plan(url: str, today: date) -> list[str]:
    """How the database runs the calls' query (usage/repo.py `page`) for ada's wallet over
    ten days in the middle of the month: the statement `page` sends, explained."""
    ctx = Context.build(Settings(database_url=url, secret_key="bench", redis_url=None))  # noqa: S106
    sent: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    since = datetime.combine(today - timedelta(days=20), datetime.min.time(), UTC)
    try:
        async with ctx.db.read() as conn:
            wallet = await billing.owner_wallet(conn, username="ada")
            event.listen(conn.sync_connection, "before_cursor_execute", remember)
            await usage_repo.page(
                conn,
                wallet,
                key_ids=None,
                model=None,
                since=since,
                until=since + timedelta(days=10),
                before_id=None,
                limit=51,
            )
            event.remove(conn.sync_connection, "before_cursor_execute", remember)
            statement, params = sent[-1]
            postgres = conn.dialect.name == "postgresql"
            explain = (
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                if postgres
                else "EXPLAIN QUERY PLAN "
            )
            plan = await conn.exec_driver_sql(explain + statement, params)
            return [str(row[-1]) for row in plan]
    finally:
        await ctx.db.close()


def sign_in(client: httpx.Client, who: str) -> None:
    form = client.get("/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form[:500]
    answer = client.post(
        "/console/login", data={"csrf_token": token.group(1), "username": who, "password": PASSWORD}
    )
    assert answer.status_code == 303, answer.text[:500]


def measure(client: httpx.Client, path: str, requests: int) -> tuple[float, float, int]:
    for _ in range(10):
        client.get(path)
    times = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        size = len(answer.content)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], size


def serve(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    env |= {"BYTESPIKE_DATABASE_URL": url, "BYTESPIKE_SECRET_KEY": "bench"}
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 -- our own venv's bytespike script
        [BYTESPIKE, "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"bytespike serve did not start: see {workdir / 'serve.log'}")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(database: str, args: argparse.Namespace, workdir: Path) -> Run:
    db = (
        SqliteDatabase(workdir)
        if database == "sqlite"
        else PostgresDatabase(args.postgres, "_console")
    )
    today = datetime.now(UTC).date()
    try:
        migrate.upgrade(db.url)
        started = time.perf_counter()
        asyncio.run(seed(db.url, args.calls))
        seed_s = time.perf_counter() - started
        print(f"{database}: {args.calls:,} calls seeded in {seed_s:.1f} s", file=sys.stderr)
        plan = asyncio.run(calls_plan(db.url, today))
        result = Run(database, seed_s, plan, {}, [])
        for _ in range(args.rounds):
            result.loads.append(load_average())
            _round(db.url, args, workdir, today, result)
        result.loads.append(load_average())
        return result
    finally:
        db.drop()


def _round(url: str, args: argparse.Namespace, workdir: Path, today: date, into: Run) -> None:
    """Every page measured once more, on a new `bytespike serve`."""
    proc, base = serve(url, workdir)
    try:
        for who, pages in (("ada", user_pages(today)), ("root", ADMIN_PAGES)):
            with httpx.Client(base_url=base, timeout=30) as client:
                sign_in(client, who)
                for path in pages:
                    p50, p95, size = measure(client, path, args.requests)
                    page = into.pages.setdefault(path, Page(path))
                    page.p50.append(p50)
                    page.p95.append(p95)
                    page.size = size
                    print(
                        f"{into.database} {path}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, {size:,} B",
                        file=sys.stderr,
                    )
    finally:
        proc.terminate()
        proc.wait(10)


def section(runs: list[Run], args: argparse.Namespace) -> str:
    box = procstat.machine()
    loads = [load for r in runs for load in r.loads]
    busiest = max(float(load.split()[0]) for load in loads)
    quiet = (
        "The machine was quiet (1-minute load average at most "
        f"{busiest:.2f} before each round and at the end)."
        if busiest <= QUIET_LOAD
        else "**Not a quiet machine**: other work ran beside the benchmark (1-minute load "
        f"average up to {busiest:.2f} on {box.cores} cores; before each round and at the end: "
        + "; ".join(f"{LABEL[r.database]} {', '.join(r.loads)}" for r in runs)
        + "): the times may be higher, and vary more, than on an idle machine."
    )
    lines = [
        SECTION,
        "",
        f"Measured {box.date} on {box.cpu_model}, {box.cores} cores, {box.ram_gb:g} GB, "
        f"Python {box.python}, by `.venv/bin/python bench/console.py` (bench/README.md): "
        f"{args.calls:,} usage records over the last 30 UTC days with their ledger entries "
        f"and rollups; each page requested {args.requests} times one after the other (after "
        "10 unmeasured) from a `bytespike serve` on loopback, timed to the last byte; "
        f"{args.rounds} rounds, each on a new server. p50 and p95 are the medians of the "
        f"rounds' (each round's p50 beside them). Targets: p50 ≤ {TARGET_MS:.0f} ms and "
        f"HTML < {TARGET_BYTES // 1000} KB. {quiet}",
        "",
        "| database | page | p50 ms | p95 ms | p50 of each round | size | within target |",
        "|---|---|--:|--:|---|--:|---|",
    ]
    for r in runs:
        for page in r.pages.values():
            p50, p95 = statistics.median(page.p50), statistics.median(page.p95)
            ok = "yes" if p50 <= TARGET_MS and page.size < TARGET_BYTES else "**no**"
            each = ", ".join(f"{t:.1f}" for t in page.p50)
            lines.append(
                f"| {LABEL[r.database]} | `{page.path}` | {p50:.1f} | {p95:.1f} | {each} "
                f"| {page.size / 1000:.1f} KB | {ok} |"
            )
    lines += [
        "",
        "The calls' query over ten days in the middle of the month (usage/repo.py `page`, "
        "which also serves `/api/v1/me/usage?since=&until=`), as each database runs it: "
        "read newest first from the index on (wallet, time, id), 51 rows, no sort.",
        "",
    ]
    for r in runs:
        lines += [f"{LABEL[r.database]}:", "", "```", *_plain(r.plan), "```", ""]
    return "\n".join(lines)


def _plain(plan: list[str]) -> Iterator[str]:
    for line in plan:
        yield line.rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES_SERVER)
    parser.add_argument("--out", default=str(HERE / "results.md"))
    args = parser.parse_args()
    runs = []
    for database in args.databases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run(database, args, Path(tmp)))
    text = section(runs, args)
    if args.out == "-":
        print(text)
    else:
        report.replace_section(Path(args.out), SECTION, text)
        print(f"wrote the section to {args.out}")


if __name__ == "__main__":
    main()
