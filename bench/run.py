"""Benchmark bytespike's metering overhead against a fake upstream, on SQLite and PostgreSQL.

    python bench/run.py [--duration 10] [--warmup 2] [--databases sqlite,postgres]
                        [--concurrency 1,16,64] [--out bench/results.md] [--direct-only]

Writes the Markdown report to --out and the same numbers as JSON beside it (.json).
A failing gateway stops the run with its first error body; the work directory with the
processes' logs is then kept and named.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gateway
import procstat
import report
import results
from databases import BenchDatabase, PostgresDatabase, SqliteDatabase, metering_counts
from measure import Load, Measurement, measure, request_body
from servers import BenchError, Service, free_port, running

HERE = Path(__file__).parent
MODES = {"non-streaming": False, "streaming": True}


@dataclass(frozen=True, slots=True)
class Options:
    duration: float
    warmup: float
    databases: list[str]
    concurrency: list[int]
    out: Path
    direct_only: bool
    postgres: str


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--direct-only", action="store_true", help="only the fake upstream")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if unknown := set(databases) - {"sqlite", "postgres"}:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        databases=databases,
        concurrency=[int(c) for c in args.concurrency.split(",")],
        out=args.out,
        direct_only=args.direct_only,
        postgres=args.postgres,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_once(
    opts: Options, server: Service, url: str, stream: bool, conc: int, **auth: str
) -> Measurement:
    load = Load(
        url=f"{url}/v1/chat/completions",
        body=request_body(gateway.MODEL, stream),
        headers=auth,
        concurrency=conc,
        duration=opts.duration,
        warmup=opts.warmup,
    )
    result = measure(load, server.pid)
    if result.load["first_error"]:
        log(f"  {server.name}: {result.load['errors']} errors; first: {result.load['first_error']}")
    return result


def bench_rows(
    opts: Options, upstream: Service, served: Service | None, key: str
) -> Iterator[results.Row]:
    """Each (mode, concurrency): straight to the fake, then through the gateway."""
    for mode, stream in MODES.items():
        for conc in opts.concurrency:
            direct = run_once(opts, upstream, upstream.url, stream, conc)
            through = None
            if served is not None:
                through = run_once(opts, served, served.url, stream, conc, **gateway.auth(key))
            row = results.Row(mode, conc, direct, through)
            log(_progress(row))
            yield row


def _progress(row: results.Row) -> str:
    d = row.direct.load
    line = (
        f"  {row.mode:>13} c={row.concurrency:<3} direct {d['rps']:6.0f}/s p50 {d['p50_ms']:.2f} ms"
    )
    if row.gateway:
        g = row.gateway
        line += (
            f" | gateway {g.load['rps']:7.0f}/s p50 {g.load['p50_ms']:.2f} ms"
            f" p99 {g.load['p99_ms']:.2f} ms, {g.cpu_ms_per_request or 0:.2f} CPU ms/req,"
            f" peak RSS {g.peak_rss_mb:.0f} MB"
        )
    return line


@contextmanager
def fresh_database(name: str, workdir: Path, postgres: str) -> Iterator[BenchDatabase]:
    db: BenchDatabase = SqliteDatabase(workdir) if name == "sqlite" else PostgresDatabase(postgres)
    try:
        yield db
    finally:
        db.drop()


def bench_database(
    opts: Options, upstream: Service, name: str, workdir: Path
) -> results.DatabaseResult:
    log(f"{name}: provisioning")
    directory = workdir / name
    directory.mkdir()
    with fresh_database(name, directory, opts.postgres) as db:
        port = free_port()
        env = gateway.environment(db.url, gateway.write_catalog(directory, upstream.url), port)
        key = gateway.provision(env)
        argv = [gateway.BYTESPIKE, "serve", "--host", "127.0.0.1", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        with running("bytespike serve", argv, url, directory / "serve.log", env) as served:
            result = results.DatabaseResult(name, start_rss_mb=procstat.sample(served.pid).rss_mb)
            for stream in MODES.values():
                gateway.check_call(url, gateway.auth(key), request_body(gateway.MODEL, stream))
            result.rows = list(bench_rows(opts, upstream, served, key))
            result.metering = metering(url, key, db, result)
    return result


def metering(
    url: str, key: str, db: BenchDatabase, result: results.DatabaseResult
) -> dict[str, Any]:
    """What the gateway billed, next to how many calls it answered."""
    balance = gateway.account(url, key)["balance"]
    answered = sum(r.gateway.load["total_ok"] for r in result.rows if r.gateway)
    spent = balance["lifetime_spent_usd"]
    if not spent > 0:
        raise BenchError(f"{answered} calls answered but the account shows no spend: {balance}")
    return {
        "gateway calls answered 200 (all runs with warm-ups, and 2 checks)": answered + 2,
        "lifetime spent USD": spent,
        **metering_counts(db),
    }


def bench_direct(opts: Options, upstream: Service) -> results.DatabaseResult:
    log("direct only")
    return results.DatabaseResult("direct only", rows=list(bench_rows(opts, upstream, None, "")))


def run(opts: Options, workdir: Path) -> list[results.DatabaseResult]:
    port = free_port()
    argv = [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with running("fake upstream", argv, url, workdir / "upstream.log") as upstream:
        if opts.direct_only:
            return [bench_direct(opts, upstream)]
        return [bench_database(opts, upstream, name, workdir) for name in opts.databases]


def main() -> int:
    opts = parse_args()
    machine = procstat.machine()
    workdir = Path(tempfile.mkdtemp(prefix="bytespike-bench-"))
    try:
        outcome = run(opts, workdir)
    except BenchError as exc:
        log(f"benchmark failed: {exc}\n(logs kept in {workdir})")
        return 1
    shutil.rmtree(workdir)
    settings = {
        "duration": opts.duration,
        "warmup": opts.warmup,
        "concurrency": opts.concurrency,
    }
    report.write(opts.out, machine, settings, outcome)
    results.write_json(opts.out.with_suffix(".json"), machine, settings, outcome)
    log(f"wrote {opts.out} and {opts.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
