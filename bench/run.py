"""Benchmark bytespike's metering overhead against a fake upstream, on SQLite and PostgreSQL.

    python bench/run.py [--duration 10] [--warmup 2] [--databases sqlite,postgres]
                        [--concurrency 1,16,64] [--workers 1,2] [--out bench/results.md]
                        [--direct-only] [--baseline REF [--current REF]]

Writes the Markdown report to --out and the same numbers as JSON beside it (.json).
A failing gateway stops the run with its first error body; the work directory with the
processes' logs is then kept and named.

With --baseline REF, REF is checked out into a temporary git worktree and, on every row,
its gateway and the working tree's (or --current REF's) are measured one after the other,
each on its own database; the report adds both and their ratio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gateway
import procstat
import report
import results
import revisions
from databases import BenchDatabase, PostgresDatabase, SqliteDatabase, metering_counts
from measure import Load, Measurement, measure, request_body, responses_body
from revisions import INSTALLED, Code
from servers import BenchError, Service, free_port, running, wait_for_workers

HERE = Path(__file__).parent
MODES = {"non-streaming": False, "streaming": True}
# The Responses API (translated for the bench model, a chat-only compatible server) beside
# Chat Completions at one concurrency; its direct runs are the chat calls it makes upstream.
RESPONSES_MODES = {"responses non-streaming": False, "responses streaming": True}
RESPONSES_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Options:
    duration: float
    warmup: float
    databases: list[str]
    concurrency: list[int]
    workers: list[int]  # `serve --workers`: a gateway and a table for each, per database
    out: Path
    direct_only: bool
    postgres: str
    baseline: str | None  # a git ref to compare with
    current: str | None  # a git ref to measure instead of the working tree


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--workers",
        help="serve --workers counts, each its own table (default 1,2; 1 with --baseline)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--direct-only", action="store_true", help="only the fake upstream")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--baseline", metavar="REF", help="also measure this git ref's gateway, row by row"
    )
    parser.add_argument(
        "--current", metavar="REF", help="with --baseline: a git ref instead of the working tree"
    )
    args = parser.parse_args()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if unknown := set(databases) - {"sqlite", "postgres"}:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    if args.current and not args.baseline:
        parser.error("--current needs --baseline")
    if args.baseline and args.direct_only:
        parser.error("--baseline compares gateways; --direct-only runs none")
    workers = [int(w) for w in (args.workers or ("1" if args.baseline else "1,2")).split(",")]
    if min(workers) < 1:
        parser.error("--workers counts start at 1")
    if args.baseline and workers != [1]:
        parser.error("--baseline compares one worker (a baseline may not have --workers)")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        databases=databases,
        concurrency=[int(c) for c in args.concurrency.split(",")],
        workers=workers,
        out=args.out,
        direct_only=args.direct_only,
        postgres=args.postgres,
        baseline=args.baseline,
        current=args.current,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_once(
    opts: Options,
    server: Service,
    url: str,
    stream: bool,
    conc: int,
    api: str = "chat",
    **auth: str,
) -> Measurement:
    responses = api == "responses"
    load = Load(
        url=f"{url}/v1/responses" if responses else f"{url}/v1/chat/completions",
        body=(responses_body if responses else request_body)(gateway.MODEL, stream),
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
    """Each (mode, concurrency): straight to the fake, then through the gateway; then the
    Responses API's rows."""
    directs: dict[tuple[bool, int], Measurement] = {}
    for mode, stream in MODES.items():
        for conc in opts.concurrency:
            direct = directs[stream, conc] = run_once(opts, upstream, upstream.url, stream, conc)
            through = None
            if served is not None:
                through = run_once(opts, served, served.url, stream, conc, **gateway.auth(key))
            row = results.Row(mode, conc, direct, through)
            log(_progress(row))
            yield row
    if served is None:
        return
    conc = RESPONSES_CONCURRENCY
    for mode, stream in RESPONSES_MODES.items():
        direct = directs.get((stream, conc)) or run_once(opts, upstream, upstream.url, stream, conc)
        auth = gateway.auth(key)
        through = run_once(opts, served, served.url, stream, conc, "responses", **auth)
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


def _compared_progress(rows: dict[str, results.Row]) -> str:
    cur = rows["current"]
    line = f"  {cur.mode:>13} c={cur.concurrency:<3} direct {cur.direct.load['rps']:6.0f}/s"
    for side, row in rows.items():
        if g := row.gateway:
            line += (
                f" | {side} {g.load['rps']:7.0f}/s p50 {g.load['p50_ms']:.2f} ms"
                f" p99 {g.load['p99_ms']:.2f} ms, {g.cpu_ms_per_request or 0:.3f} CPU ms/req"
            )
    ratios = results.compare(rows["baseline"], cur).metrics
    return line + "".join(
        f" | {label} cur/base {_ratio(ratios[key].ratio)}"
        for key, label in results.COMPARED
        if key in ("rps", "cpu_ms_per_request")
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@contextmanager
def fresh_database(
    name: str, workdir: Path, postgres: str, suffix: str = ""
) -> Iterator[BenchDatabase]:
    db: BenchDatabase = (
        SqliteDatabase(workdir) if name == "sqlite" else PostgresDatabase(postgres, suffix)
    )
    try:
        yield db
    finally:
        db.drop()


@dataclass(frozen=True, slots=True)
class Gateway:
    """One provisioned `bytespike serve`, up and answering, with its own database."""

    code: Code
    served: Service
    key: str
    db: BenchDatabase
    start_rss_mb: float


@contextmanager
def gateway_up(
    opts: Options,
    upstream: Service,
    name: str,
    directory: Path,
    code: Code,
    suffix: str = "",
    workers: int = 1,
) -> Iterator[Gateway]:
    """A fresh database provisioned by `code`'s CLI and `code`'s gateway serving it (with
    `workers` worker processes), checked with one call of each mode, while the block runs."""
    directory.mkdir(parents=True)
    with fresh_database(name, directory, opts.postgres, suffix) as db:
        port = free_port()
        env = code.env(
            gateway.environment(db.url, gateway.write_catalog(directory, upstream.url), port)
        )
        key = gateway.provision(env, code)
        argv = code.argv("serve", "--host", "127.0.0.1", "--port", str(port))
        if workers > 1:  # only then: a baseline's `serve` may not know the option
            argv += ["--workers", str(workers)]
        url = f"http://127.0.0.1:{port}"
        serve_log = directory / "serve.log"
        title = "bytespike serve" if code.src is None else f"bytespike serve ({code.side})"
        with running(title, argv, url, serve_log, env) as served:
            if workers > 1:
                wait_for_workers(title, served.pid, workers)
            code.confirm(title, serve_log.read_text(errors="replace"))
            start_rss_mb = procstat.sample(served.pid).rss_mb
            for stream in MODES.values():
                gateway.check_call(url, gateway.auth(key), request_body(gateway.MODEL, stream))
            yield Gateway(code, served, key, db, start_rss_mb)


def bench_database(
    opts: Options, upstream: Service, name: str, workdir: Path, workers: int = 1
) -> results.DatabaseResult:
    label = name if workers == 1 else f"{name}-{workers}-workers"
    log(f"{label}: provisioning")
    with gateway_up(opts, upstream, name, workdir / label, INSTALLED, workers=workers) as up:
        result = results.DatabaseResult(name, workers, start_rss_mb=up.start_rss_mb)
        result.rows = list(bench_rows(opts, upstream, up.served, up.key))
        result.metering = metering(up.served.url, up.key, up.db, result)
    return result


def compared_rows(
    opts: Options, upstream: Service, gateways: list[Gateway]
) -> Iterator[dict[str, results.Row]]:
    """Each (mode, concurrency): straight to the fake, then through each gateway in turn,
    the first one alternating from row to row; the rows by side."""
    turn = 0
    for mode, stream in MODES.items():
        for conc in opts.concurrency:
            direct = run_once(opts, upstream, upstream.url, stream, conc)
            rows: dict[str, results.Row] = {}
            for up in gateways if turn % 2 == 0 else gateways[::-1]:
                auth = gateway.auth(up.key)
                through = run_once(opts, up.served, up.served.url, stream, conc, **auth)
                rows[up.code.side] = results.Row(mode, conc, direct, through)
            turn += 1
            rows = {side: rows[side] for side in ("baseline", "current")}
            log(_compared_progress(rows))
            yield rows


def bench_compared(
    opts: Options, upstream: Service, name: str, workdir: Path, codes: list[Code]
) -> results.DatabaseResult:
    """The current code's result on `name`, with the baseline's beside it (`.baseline`)."""
    with ExitStack() as stack:
        gateways: list[Gateway] = []
        for code in codes:
            log(f"{name}: provisioning the {code.side}")
            directory = workdir / name / code.side
            starting = gateway_up(opts, upstream, name, directory, code, f"_{code.side}")
            gateways.append(stack.enter_context(starting))
        by_side = {
            up.code.side: results.DatabaseResult(name, start_rss_mb=up.start_rss_mb)
            for up in gateways
        }
        for rows in compared_rows(opts, upstream, gateways):
            for side, row in rows.items():
                by_side[side].rows.append(row)
        for up in gateways:
            result = by_side[up.code.side]
            result.metering = metering(up.served.url, up.key, up.db, result)
    current = by_side["current"]
    current.baseline = by_side["baseline"]
    return current


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


def run(opts: Options, workdir: Path, codes: list[Code] | None) -> list[results.DatabaseResult]:
    port = free_port()
    argv = [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with running("fake upstream", argv, url, workdir / "upstream.log") as upstream:
        if opts.direct_only:
            return [bench_direct(opts, upstream)]
        if codes:
            return [bench_compared(opts, upstream, name, workdir, codes) for name in opts.databases]
        return [
            bench_database(opts, upstream, name, workdir, workers)
            for name in opts.databases
            for workers in opts.workers
        ]


def sides(opts: Options, stack: ExitStack) -> list[Code] | None:
    """With --baseline: the baseline's code and the current code, worktrees held open by
    `stack`; otherwise None (the installed bytespike only)."""
    if opts.baseline is None:
        return None
    baseline = stack.enter_context(revisions.checked_out("baseline", opts.baseline))
    current = (
        stack.enter_context(revisions.checked_out("current", opts.current))
        if opts.current
        else revisions.working_tree()
    )
    for code in (baseline, current):
        log(f"{code.side}: {code.described}, {code.src}")
    return [baseline, current]


def main() -> int:
    opts = parse_args()
    machine = procstat.machine()
    with ExitStack() as worktrees:  # removed when the run ends, however it ends
        try:
            codes = sides(opts, worktrees)
        except BenchError as exc:
            log(f"benchmark failed: {exc}")
            return 1
        workdir = Path(tempfile.mkdtemp(prefix="bytespike-bench-"))
        try:
            outcome = run(opts, workdir, codes)
        except BenchError as exc:
            log(f"benchmark failed: {exc}\n(logs kept in {workdir})")
            return 1
    shutil.rmtree(workdir)
    settings: dict[str, Any] = {
        "duration": opts.duration,
        "warmup": opts.warmup,
        "concurrency": opts.concurrency,
        "workers": opts.workers,
    }
    if codes:
        settings |= {code.side: code.described for code in codes}
    report.write(opts.out, machine, settings, outcome)
    results.write_json(opts.out.with_suffix(".json"), machine, settings, outcome)
    log(f"wrote {opts.out} and {opts.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
