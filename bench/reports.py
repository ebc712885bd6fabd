"""Usage reports over millions of calls: `usage report --by user` over 30 days, timed.

    .venv/bin/python bench/reports.py [--calls 2000000] [--databases sqlite,postgres]
                                      [--runs 9] [--postgres URL] [--out bench/results.md]

Fills a throw-away database (a SQLite file in a temp directory; a PostgreSQL database
`bytespike_bench_<pid>_reports`, dropped at the end) with ~1,000 users (300 of them in 30
orgs), 2,000 keys, 5 models and `--calls` usage records over 60 UTC days (bulk inserts on
SQLite, COPY on PostgreSQL), then the daily rollups those records produce (grouped exactly
as the settlement's upsert and migration 0006 group them) and some refusals. Then it times
the report service (`usage.reports.build` and its JSON rendering) by user over the last 30
days, the median of `--runs` runs, the other groupings beside it, and the CLI end to end
once (a new process: interpreter start, imports and the database connection included).
The results go into the section "Usage reports over 2 million calls" of `--out`, replacing
that section only (or are printed alone with `--out -`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import orjson
import procstat
import report
from databases import DEFAULT_POSTGRES_SERVER, PostgresDatabase, SqliteDatabase

from bytespike import catalog
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.db.engine import Database
from bytespike.settings import Settings
from bytespike.usage import reports

HERE = Path(__file__).resolve().parent
SECTION = "## Usage reports over 2 million calls"
TARGET_MS = 200.0
LAST_DAY = date(2026, 11, 25)
DAYS = 60
SPAN = 30
USERS, ORGS, ENTERPRISE, KEYS = 1_000, 30, 300, 2_000
# (model, input and output price in micro-dollars per 1,000 tokens): integers, so the costs
# are computed exactly as whole micros (rounded up, as pricing.charge does).
MODELS = (
    ("gpt-5-4", 2_500, 15_000),
    ("claude-sonnet-4-6", 3_000, 15_000),
    ("gemini-3-1-pro", 2_000, 12_000),
    ("gpt-5-4-mini", 250, 2_000),
    ("mock", 3_000, 15_000),
)
REASONS = ("rate_limited", "insufficient_balance", "model_not_allowed", "quota_cap_reached")
CHUNK = 100_000
CLI_RUNS = 3
RECORD_COLUMNS = (
    "wallet_id", "key_id", "model", "provider", "input_tokens", "output_tokens",
    "cached_tokens", "cost_micros", "status", "http_status", "stream", "latency_ms",
    "created_at",
)  # fmt: skip
INSERT_RECORD = (
    f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)})"  # noqa: S608 (constants)
    f" VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


@dataclass(frozen=True, slots=True)
class Fleet:
    """Who calls: each key's wallet, its models, and how busy it is."""

    key_wallet: list[int]  # by key id - 1
    key_models: list[tuple[int, ...]]
    key_weight: list[float]


def fleet(rng: random.Random) -> Fleet:
    """Users 1..300 are enterprise, 10 per org (org wallets 1..30); users 301..1000 pay
    from their own wallets (31..730). Each user has two keys; keys are used unevenly (a
    few very busy, a long tail) and each calls one to three favourite models."""
    wallets = []
    for key in range(KEYS):
        user = key // 2 + 1
        wallets.append((user - 1) // 10 + 1 if user <= ENTERPRISE else ORGS + user - ENTERPRISE)
    models = [tuple(rng.sample(range(len(MODELS)), rng.randint(1, 3))) for _ in range(KEYS)]
    weights = [1 / (rank + 1) ** 0.8 for rank in range(KEYS)]
    rng.shuffle(weights)
    return Fleet(wallets, models, weights)


def records(rng: random.Random, calls: int, who: Fleet) -> Iterator[Sequence[tuple[object, ...]]]:
    """`calls` usage records in chunks, spread over DAYS days ending LAST_DAY (UTC)."""
    first = datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=UTC) - timedelta(days=DAYS - 1)
    span_seconds = DAYS * 86_400
    done = 0
    while done < calls:
        n = min(CHUNK, calls - done)
        keys = rng.choices(range(KEYS), weights=who.key_weight, k=n)
        chunk = []
        for key in keys:
            index = rng.choice(who.key_models[key])
            model, price_in, price_out = MODELS[index]
            tokens_in, tokens_out = rng.randint(20, 8_000), rng.randint(1, 2_000)
            cached = tokens_in // 2 if rng.random() < 0.2 else 0
            cost = -(-(tokens_in * price_in + tokens_out * price_out) // 1_000_000)
            at = first + timedelta(seconds=rng.randrange(span_seconds))
            chunk.append(
                (who.key_wallet[key], key + 1, model, "bench", tokens_in, tokens_out, cached,
                 cost, "ok", 200, False, rng.randint(50, 4_000), at)
            )  # fmt: skip
        done += n
        yield chunk


def refusals(rng: random.Random, who: Fleet) -> list[tuple[object, ...]]:
    """Some refused calls: a tenth of the keys, on a few days each."""
    rows = {}
    for key in rng.sample(range(KEYS), KEYS // 10):
        for day in rng.sample(range(DAYS), 5):
            on = LAST_DAY - timedelta(days=day)
            rows[(on, key + 1, rng.choice(REASONS))] = (who.key_wallet[key], rng.randint(1, 50))
    return [(d, k, r, w, c) for (d, k, r), (w, c) in rows.items()]


def people(now: datetime) -> dict[str, Sequence[tuple[object, ...]]]:
    """The rows of the small tables, by table, in insertion order."""
    users = [
        (u, f"user{u:04d}", f"user{u:04d}@bench.example",
         "enterprise" if u <= ENTERPRISE else "individual", now)
        for u in range(1, USERS + 1)
    ]  # fmt: skip
    orgs = [(o, f"Org {o:02d}", False, now) for o in range(1, ORGS + 1)]
    wallets = [(w, None, w, 0, 5_000_000, now) for w in range(1, ORGS + 1)] + [
        (ORGS + u - ENTERPRISE, u, None, 0, 5_000_000, now)
        for u in range(ENTERPRISE + 1, USERS + 1)
    ]
    members = [((u - 1) // 10 + 1, u, "owner" if u % 10 == 1 else "member", now)
               for u in range(1, ENTERPRISE + 1)]  # fmt: skip
    keys = []
    for key in range(1, KEYS + 1):
        user = (key - 1) // 2 + 1
        org = (user - 1) // 10 + 1 if user <= ENTERPRISE else None
        keys.append((key, user, org, f"{key:064x}", f"bs-{key:08x}", f"key {key}", 600, True, now))
    return {
        "users (id, username, email, tier, created_at)": users,
        "orgs (id, name, paused, created_at)": orgs,
        "wallets (id, user_id, org_id, available_micros, low_balance_threshold_micros,"
        " created_at)": wallets,
        "memberships (org_id, user_id, role, created_at)": members,
        "api_keys (id, user_id, org_id, key_hash, prefix, name, rate_limit, all_models,"
        " created_at)": keys,
    }


def _sqlite_time(moment: datetime) -> str:
    """As SQLAlchemy stores a DateTime on SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_row(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(
        _sqlite_time(v) if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v
        for v in row
    )


ROLL_UP = """
INSERT INTO usage_daily (day, wallet_id, key_id, model, requests, input_tokens,
                         output_tokens, cached_tokens, cost_micros, last_at)
SELECT {day}, wallet_id, key_id, model, count(*), sum(input_tokens), sum(output_tokens),
       sum(cached_tokens), sum(cost_micros), max(created_at)
FROM usage_records GROUP BY {day}, wallet_id, key_id, model
"""


def fill_sqlite(path: Path, calls: int, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 (reproducible data, no secret)
    who = fleet(rng)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for table, rows in people(datetime.now(UTC)).items():
        marks = ", ".join("?" * len(rows[0]))
        insert = f"INSERT INTO {table} VALUES ({marks})"  # noqa: S608 (this file's tables)
        conn.executemany(insert, map(_sqlite_row, rows))
    for chunk in records(rng, calls, who):
        conn.executemany(INSERT_RECORD, map(_sqlite_row, chunk))
    conn.execute(ROLL_UP.replace("{day}", "substr(created_at, 1, 10)"))
    conn.executemany(
        "INSERT INTO refusals_daily (day, key_id, reason, wallet_id, count) VALUES (?, ?, ?, ?, ?)",
        map(_sqlite_row, refusals(rng, who)),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def fill_postgres(url: str, calls: int, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 (reproducible data, no secret)
    who = fleet(rng)
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for table, rows in people(datetime.now(UTC)).items():
                name, columns = table.split(" ", 1)
                names = [c.strip() for c in columns.strip("()").split(",")]
                await conn.copy_records_to_table(name, records=rows, columns=names)
            for chunk in records(rng, calls, who):
                await conn.copy_records_to_table(
                    "usage_records", records=chunk, columns=list(RECORD_COLUMNS)
                )
            await conn.execute(ROLL_UP.replace("{day}", "(created_at AT TIME ZONE 'UTC')::date"))
            await conn.copy_records_to_table(
                "refusals_daily",
                records=refusals(rng, who),
                columns=["day", "key_id", "reason", "wallet_id", "count"],
            )
            for table in ("users", "orgs", "wallets", "api_keys"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"  # (this file's tables)
                )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


@dataclass
class Measured:
    database: str
    calls: int
    rollup_rows: int
    rollup_rows_in_span: int
    fill_s: float
    first_ms: float
    by_ms: dict[str, float]  # the median per grouping
    runs: list[float]  # by user, every run
    rows: int
    cli_ms: float
    cli_start_ms: float
    cli_in_process_ms: float


async def time_service(url: str, runs: int) -> tuple[float, dict[str, float], list[float], int]:
    today = datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    settings = Settings(database_url=url, redis_url=None)
    ctx = Context(settings, Database(url), catalog.load(), FixedClock(today))
    since, until = span()

    async def once(by: str) -> tuple[float, int]:
        start = time.perf_counter()
        report = await reports.build(ctx, by=by, since=since, until=until)
        orjson.dumps(reports.as_json(report))
        return (time.perf_counter() - start) * 1000, len(report.lines)

    try:
        first, rows = await once("user")  # the first: a new connection pool
        timings = [(await once("user"))[0] for _ in range(runs)]
        medians = {"user": statistics.median(timings)}
        for by in reports.BYS[1:]:
            medians[by] = statistics.median([(await once(by))[0] for _ in range(runs)])
    finally:
        await ctx.db.close()
    return first, medians, timings, rows


def span() -> tuple[str, str]:
    return (LAST_DAY - timedelta(days=SPAN - 1)).isoformat(), LAST_DAY.isoformat()


def time_cli(url: str) -> tuple[float, float]:
    """`bytespike usage report --by user` in a new process, and the same process's start
    alone (the interpreter and the CLI's imports) beside it: wall-clock milliseconds, the
    median of CLI_RUNS runs of each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    env["BYTESPIKE_DATABASE_URL"] = url
    since, until = span()
    command = [sys.executable, "-m", "bytespike", "usage", "report", "--by", "user"]
    command += ["--since", since, "--until", until]

    def wall(args: list[str]) -> float:
        start = time.perf_counter()
        done = subprocess.run(  # noqa: S603 (our own interpreter and CLI)
            args, env=env, capture_output=True, text=True, check=False
        )
        elapsed = (time.perf_counter() - start) * 1000
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr}")
        return elapsed

    start_only = [sys.executable, "-c", "import bytespike.cli.main"]
    wall(start_only)  # warm the file cache
    return (
        statistics.median(wall(command) for _ in range(CLI_RUNS)),
        statistics.median(wall(start_only) for _ in range(CLI_RUNS)),
    )


def time_cli_in_process(url: str) -> float:
    """The same command through the CLI's Typer app in this process (as the tests drive
    it): settings, the schema check, the context, the report and its table, without the
    interpreter's start. Milliseconds, the median of CLI_RUNS runs."""
    from typer.testing import CliRunner

    from bytespike.cli.main import app

    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BYTESPIKE_")}
    env["BYTESPIKE_DATABASE_URL"] = url
    since, until = span()
    args = ["usage", "report", "--by", "user", "--since", since, "--until", until]
    timings = []
    for _ in range(CLI_RUNS):
        start = time.perf_counter()
        done = CliRunner().invoke(app, args, env=env)
        timings.append((time.perf_counter() - start) * 1000)
        if done.exit_code != 0:
            raise SystemExit(f"usage report failed: {done.output}")
    return statistics.median(timings)


def count(db: SqliteDatabase | PostgresDatabase, query: str) -> int:
    found = db.count(query)
    assert found is not None, query
    return found


def run_one(name: str, calls: int, runs: int, server: str, seed: int) -> Measured:
    with tempfile.TemporaryDirectory(prefix="bytespike-reports-") as tmp:
        db: SqliteDatabase | PostgresDatabase = (
            SqliteDatabase(Path(tmp)) if name == "sqlite" else PostgresDatabase(server, "_reports")
        )
        try:
            migrate.upgrade(db.url)
            start = time.perf_counter()
            if isinstance(db, SqliteDatabase):
                fill_sqlite(db.path, calls, seed)
            else:
                asyncio.run(fill_postgres(db.url, calls, seed))
            fill_s = time.perf_counter() - start
            since, until = span()
            in_span = f"WHERE day >= '{since}' AND day <= '{until}'"  # our own dates
            first, medians, timings, rows = asyncio.run(time_service(db.url, runs))
            cli_ms, cli_start_ms = time_cli(db.url)
            cli_in_process_ms = time_cli_in_process(db.url)
            rolled = count(db, "SELECT sum(requests) FROM usage_daily")
            assert rolled == count(db, "SELECT count(*) FROM usage_records") == calls
            return Measured(
                database=name,
                calls=calls,
                rollup_rows=count(db, "SELECT count(*) FROM usage_daily"),
                rollup_rows_in_span=count(
                    db,
                    f"SELECT count(*) FROM usage_daily {in_span}",  # noqa: S608 (our dates)
                ),
                fill_s=fill_s,
                first_ms=first,
                by_ms=medians,
                runs=timings,
                rows=rows,
                cli_ms=cli_ms,
                cli_start_ms=cli_start_ms,
                cli_in_process_ms=cli_in_process_ms,
            )
        finally:
            db.drop()


def section(results: list[Measured], runs: int) -> str:
    since, until = span()
    label = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    box = procstat.machine()
    lines = [
        SECTION,
        "",
        f"Measured {box.date} on {box.cpu_model}, {box.cores} cores, {box.ram_gb:g} GB, "
        f"Python {box.python} (load average at the end: {box.load_average}), by "
        "`.venv/bin/python bench/reports.py` (bench/README.md). "
        f"{results[0].calls:,} usage records over {DAYS} UTC days, {USERS:,} users ({ORGS} "
        f"orgs), {KEYS:,} keys, {len(MODELS)} models, and the daily rollups they produce; "
        f"`usage report --by user --since {since} --until {until}` ({SPAN} days). "
        f"Service: `usage.reports.build` plus its JSON rendering, in-process, median of {runs} "
        "runs after a first one (which opens the connection pool); each grouping likewise. "
        f"CLI (median of {CLI_RUNS} each): `bytespike usage report --by user` through the CLI's "
        "Typer app in the benchmark's process (settings, schema check, context, report, "
        "table: everything but the interpreter's start), then as a new process end to end, "
        "beside the start of such a process alone (`python -c 'import bytespike.cli.main'`).",
        "",
        "| database | usage records | rollup rows (in the 30 days) | fill s | first ms "
        "| **by user, median ms** | by key | by model | by day | by org | report rows "
        "| CLI in-process ms | CLI new process ms | a process's start alone ms "
        "| target ≤ 200 ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        verdict = "pass" if r.by_ms["user"] <= TARGET_MS else "**FAIL**"
        others = " | ".join(f"{r.by_ms[by]:.1f}" for by in reports.BYS[1:])
        lines.append(
            f"| {label[r.database]} | {r.calls:,} | {r.rollup_rows:,} ({r.rollup_rows_in_span:,})"
            f" | {r.fill_s:.0f} | {r.first_ms:.1f} | **{r.by_ms['user']:.1f}** | {others}"
            f" | {r.rows:,} | {r.cli_in_process_ms:.0f} | {r.cli_ms:.0f} | {r.cli_start_ms:.0f}"
            f" | {verdict} |"
        )
    lines.append("")
    for r in results:
        every = ", ".join(f"{t:.1f}" for t in r.runs)
        lines.append(f"- {label[r.database]}, by user, every run (ms): {every}")
    lines += [
        "",
        "The report reads `usage_daily` and `refusals_daily` only: one row per UTC day, wallet,"
        " key and model, so its cost follows the keys and days in the span, not the calls"
        f" (here {results[0].calls / results[0].rollup_rows:.1f} usage records per rollup"
        " row). A new CLI process spends most of its time starting (the interpreter and the"
        " imports); with the machine shared, those two columns vary by ±100 ms run to run.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2_000_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES_SERVER)
    parser.add_argument("--out", default=str(HERE / "results.md"))
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    results = []
    for name in args.databases.split(","):
        print(f"{name}: filling {args.calls:,} calls and timing the report...", flush=True)
        results.append(run_one(name, args.calls, args.runs, args.postgres, args.seed))
        r = results[-1]
        print(
            f"{name}: by user median {r.by_ms['user']:.1f} ms (first {r.first_ms:.1f} ms), "
            f"CLI {r.cli_ms:.0f} ms; fill {r.fill_s:.0f} s",
            flush=True,
        )
    text = section(results, args.runs)
    if args.out == "-":
        print(text)
    else:
        report.replace_section(Path(args.out), SECTION, text)
        print(f"wrote the section to {args.out}")


if __name__ == "__main__":
    main()
