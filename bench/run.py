"""Benchmark bytespike's metering overhead against a fake upstream, on SQLite and PostgreSQL.

    python bench/run.py [--duration 10] [--warmup 2] [--databases sqlite,postgres]
                        [--concurrency 1,16,64] [--workers 1,2] [--out bench/results.md]
                        [--models bench-model,gpt-5-4] [--direct-only]
                        [--baseline REF [--current REF]] [--repeat N]

Writes the Markdown report to --out and the same numbers as JSON beside it (.json).
A failing gateway stops the run with its first error body; the work directory with the
processes' logs is then kept and named.

With --baseline REF, REF is checked out into a temporary git worktree and, on every row,
its gateway and the working tree's (or --current REF's) are measured one after the other,
each on its own database; the report adds both and their ratio. With --repeat N, each
row's gateways are measured N times (with --baseline, in rounds: both sides back to back,
taking turns on which goes first) and the row reports the median of each figure; the
comparison adds each round's ratio.
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
from databases import BenchDatabase, metering_counts
from measure import Load, Measurement, measure, median_of, request_body, responses_body
from revisions import INSTALLED, Code
from servers import BenchError, Service, fake_upstream, wait_for_workers

HERE = Path(__file__).parent
MODES = {"non-streaming": False, "streaming": True}
# The Responses API (translated for the bench model, a chat-only compatible server) beside
# Chat Completions at one concurrency; its direct runs are the chat calls it makes upstream.
RESPONSES_MODES = {"responses non-streaming": False, "responses streaming": True}
RESPONSES_CONCURRENCY = 16
# A shipped model (--models) runs Chat Completions at these of --concurrency only, which
# keeps the default run under a third longer; its direct runs are the bench model's.
SHIPPED_CONCURRENCY = (1, 16)


@dataclass(frozen=True, slots=True)
class Case:
    """One row: what the load asks the gateway for."""

    mode: str  # the row's label (results.label)
    model: str
    stream: bool
    concurrency: int
    api: str = "chat"  # or "responses"


def cases(models: list[str], concurrency: list[int]) -> list[Case]:
    """The bench model's modes at every concurrency, each other model's chat modes at
    SHIPPED_CONCURRENCY, then the bench model's Responses API rows."""
    found = []
    for model in models:
        levels = (
            concurrency
            if model == gateway.MODEL
            else [c for c in concurrency if c in SHIPPED_CONCURRENCY]
        )
        found += [
            Case(results.label(mode, model), model, stream, conc)
            for mode, stream in MODES.items()
            for conc in levels
        ]
    if gateway.MODEL in models:
        found += [
            Case(mode, gateway.MODEL, stream, RESPONSES_CONCURRENCY, "responses")
            for mode, stream in RESPONSES_MODES.items()
        ]
    return found


@dataclass(frozen=True, slots=True)
class Options:
    duration: float
    warmup: float
    databases: list[str]
    concurrency: list[int]
    workers: list[int]  # `serve --workers`: a gateway and a table for each, per database
    models: list[str]  # catalog ids: the bench model and shipped `openai` models
    out: Path
    direct_only: bool
    postgres: str
    baseline: str | None  # a git ref to compare with
    current: str | None  # a git ref to measure instead of the working tree
    repeat: int  # runs per row and gateway; the row reports their medians


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
    parser.add_argument(
        "--models",
        default=f"{gateway.MODEL},{gateway.SHIPPED_MODEL}",
        help="catalog ids: the bench model and/or shipped `openai` models, each its own rows",
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
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per row and gateway, reported as medians"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat is at least 1")
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
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    servable = gateway.shipped_openai_models(INSTALLED.shipped_catalog) | {gateway.MODEL}
    if not models or set(models) - servable:
        parser.error(f"--models: one or more of {', '.join(sorted(servable))}")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        databases=databases,
        concurrency=[int(c) for c in args.concurrency.split(",")],
        workers=workers,
        models=models,
        out=args.out,
        direct_only=args.direct_only,
        postgres=args.postgres,
        baseline=args.baseline,
        current=args.current,
        repeat=args.repeat,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_once(opts: Options, case: Case, target: Gateway | Service) -> Measurement:
    """`case`'s load through a gateway, or straight at the fake upstream (a Service)."""
    up, server = (target, target.served) if isinstance(target, Gateway) else (None, target)
    responses = case.api == "responses"
    load = Load(
        url=f"{server.url}/v1/responses" if responses else f"{server.url}/v1/chat/completions",
        body=(responses_body if responses else request_body)(case.model, case.stream),
        headers=gateway.auth(up.key) if up else {},
        concurrency=case.concurrency,
        duration=opts.duration,
        warmup=opts.warmup,
    )
    result = measure(load, server.pid, postgres=up is not None and up.db.name == "postgres")
    if result.load["first_error"]:
        log(f"  {server.name}: {result.load['errors']} errors; first: {result.load['first_error']}")
    return result


class Directs:
    """The direct runs, one per (stream, concurrency), made when a row first needs one: the
    fake does the same work whichever model a row's gateway asks for, and a Responses row's
    gateway makes chat calls upstream."""

    def __init__(self, opts: Options, upstream: Service) -> None:
        self._opts, self._upstream = opts, upstream
        self._runs: dict[tuple[bool, int], Measurement] = {}

    def run(self, case: Case) -> Measurement:
        key = (case.stream, case.concurrency)
        if key not in self._runs:
            chat = Case(case.mode, gateway.MODEL, case.stream, case.concurrency)
            self._runs[key] = run_once(self._opts, chat, self._upstream)
        return self._runs[key]


def direct_rows(opts: Options, upstream: Service) -> Iterator[results.Row]:
    """The bench model's chat cases straight at the fake upstream, no gateway."""
    directs = Directs(opts, upstream)
    for case in cases([gateway.MODEL], opts.concurrency):
        if case.api == "chat":
            row = _row(case, directs.run(case), [])
            log(_progress(row))
            yield row


def rows_in_turns(
    opts: Options, upstream: Service, gateways: dict[str, Gateway], todo: list[Case]
) -> Iterator[dict[str, results.Row]]:
    """Each case: straight to the fake (once per stream and concurrency), then through each
    gateway in turn, the first one alternating from round to round and row to row
    (--repeat rounds per row, each figure their median); the case's rows by gateway name.
    The gateways so meet the same moments of a noisy machine, and their ratio holds where
    a section after section would compare one minute with the next."""
    directs = Directs(opts, upstream)
    names = list(gateways)
    for turn, case in enumerate(todo):
        direct = directs.run(case)
        runs: dict[str, list[Measurement]] = {name: [] for name in names}
        for round_ in range(opts.repeat):
            for name in names if (turn + round_) % 2 == 0 else names[::-1]:
                runs[name].append(run_once(opts, case, gateways[name]))
        yield {name: _row(case, direct, runs[name]) for name in names}


def _row(case: Case, direct: Measurement, runs: list[Measurement]) -> results.Row:
    """A case's row: its gateway figures the median of its runs (none: a direct-only row),
    and the runs themselves when there were several (--repeat)."""
    through = median_of(runs) if runs else None
    rounds = tuple(runs) if len(runs) > 1 else ()
    return results.Row(case.mode, case.concurrency, direct, through, case.model, rounds)


def _progress(row: results.Row) -> str:
    d = row.direct.load
    line = (
        f"  {row.mode:>23} c={row.concurrency:<3} direct {d['rps']:6.0f}/s p50 {d['p50_ms']:.2f} ms"
    )
    if row.gateway:
        g = row.gateway
        line += (
            f" | gateway {g.load['rps']:7.0f}/s p50 {g.load['p50_ms']:.2f} ms"
            f" p99 {g.load['p99_ms']:.2f} ms, {g.cpu_ms_per_request or 0:.2f} CPU ms/req,"
            f" peak RSS {g.peak_rss_mb:.0f} MB"
        )
        if g.postgres_cpu_ms_per_request is not None:
            line += f", PG CPU {g.postgres_cpu_ms_per_request:.3f} ms/req"
    return line


def _compared_progress(rows: dict[str, results.Row]) -> str:
    cur = rows["current"]
    line = f"  {cur.mode:>23} c={cur.concurrency:<3} direct {cur.direct.load['rps']:6.0f}/s"
    for side, row in rows.items():
        if g := row.gateway:
            line += (
                f" | {side} {g.load['rps']:7.0f}/s p50 {g.load['p50_ms']:.2f} ms"
                f" p99 {g.load['p99_ms']:.2f} ms, {g.cpu_ms_per_request or 0:.3f} CPU ms/req"
            )
            if g.postgres_cpu_ms_per_request is not None:
                line += f", PG {g.postgres_cpu_ms_per_request:.3f}"
    compared = results.compare(rows["baseline"], cur)
    return line + "".join(
        f" | {label} cur/base {_ratio(compared.metrics[key].ratio)}"
        + (f" (rounds {' '.join(map(_ratio, compared.rounds[key]))})" if compared.rounds else "")
        for key, label in results.COMPARED
        if key in results.BY_ROUND
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class Gateway:
    """One provisioned `bytespike serve`, up and answering, with its own database."""

    code: Code
    served: Service
    key: str
    db: BenchDatabase
    start_rss_mb: float
    checks: int  # calls made before the load, answered 200


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
    `workers` worker processes), checked with one call of each mode and model, while the
    block runs."""
    title = "bytespike serve" if code.src is None else f"bytespike serve ({code.side})"
    # Only with workers: a baseline's `serve` may not know the option.
    options = ("--workers", str(workers)) if workers > 1 else ()
    with gateway.served(
        code, name, directory, opts.postgres, upstream.url,
        suffix=suffix, title=title, options=options,
    ) as up:  # fmt: skip
        served, url = up.service, up.service.url
        if workers > 1:
            wait_for_workers(title, served.pid, workers)
        code.confirm(title, up.log.read_text(errors="replace"))
        start_rss_mb = procstat.sample(served.pid).rss_mb
        for model in opts.models:
            for stream in MODES.values():
                gateway.check_call(url, gateway.auth(up.key), request_body(model, stream))
        checks = len(opts.models) * len(MODES)
        yield Gateway(code, served, up.key, up.db, start_rss_mb, checks)


def bench_databases(
    opts: Options, upstream: Service, workdir: Path, workers: int = 1
) -> list[results.DatabaseResult]:
    """Every database's gateway (`workers` workers each), all up at once and measured in
    turns, row by row (`rows_in_turns`); a result per database."""
    with ExitStack() as stack:
        gateways: dict[str, Gateway] = {}
        for name in opts.databases:
            label = name if workers == 1 else f"{name}-{workers}-workers"
            log(f"{label}: provisioning")
            starting = gateway_up(opts, upstream, name, workdir / label, INSTALLED, workers=workers)
            gateways[name] = stack.enter_context(starting)
        by_name = {
            name: results.DatabaseResult(name, workers, start_rss_mb=up.start_rss_mb)
            for name, up in gateways.items()
        }
        for rows in rows_in_turns(opts, upstream, gateways, cases(opts.models, opts.concurrency)):
            for name, row in rows.items():
                log(f"{name:>8}{_progress(row)}")
                by_name[name].rows.append(row)
        for name, up in gateways.items():
            by_name[name].metering = metering(up, by_name[name])
    return list(by_name.values())


def bench_compared(
    opts: Options, upstream: Service, name: str, workdir: Path, codes: list[Code]
) -> results.DatabaseResult:
    """The current code's result on `name`, with the baseline's beside it (`.baseline`)."""
    with ExitStack() as stack:
        gateways: dict[str, Gateway] = {}
        for code in codes:
            log(f"{name}: provisioning the {code.side}")
            directory = workdir / name / code.side
            starting = gateway_up(opts, upstream, name, directory, code, f"_{code.side}")
            gateways[code.side] = stack.enter_context(starting)
        by_side = {
            side: results.DatabaseResult(name, start_rss_mb=up.start_rss_mb)
            for side, up in gateways.items()
        }
        chat = [c for c in cases(opts.models, opts.concurrency) if c.api == "chat"]
        for rows in rows_in_turns(opts, upstream, gateways, chat):
            log(_compared_progress(rows))
            for side, row in rows.items():
                by_side[side].rows.append(row)
        for side, up in gateways.items():
            by_side[side].metering = metering(up, by_side[side])
    current = by_side["current"]
    current.baseline = by_side["baseline"]
    return current


def metering(up: Gateway, result: results.DatabaseResult) -> dict[str, Any]:
    """What the gateway billed, next to how many calls it answered."""
    balance = gateway.account(up.served.url, up.key)["balance"]
    answered = sum(r.gateway.load["total_ok"] for r in result.rows if r.gateway)
    spent = balance["lifetime_spent_usd"]
    if not spent > 0:
        raise BenchError(f"{answered} calls answered but the account shows no spend: {balance}")
    label = f"gateway calls answered 200 (all runs with warm-ups, and {up.checks} checks)"
    return {
        label: answered + up.checks,
        "lifetime spent USD": spent,
        **metering_counts(up.db),
    }


def bench_direct(opts: Options, upstream: Service) -> results.DatabaseResult:
    log("direct only")
    return results.DatabaseResult("direct only", rows=list(direct_rows(opts, upstream)))


def run(opts: Options, workdir: Path, codes: list[Code] | None) -> list[results.DatabaseResult]:
    with fake_upstream(workdir) as upstream:
        if opts.direct_only:
            return [bench_direct(opts, upstream)]
        if codes:
            return [bench_compared(opts, upstream, name, workdir, codes) for name in opts.databases]
        by_workers = [bench_databases(opts, upstream, workdir, n) for n in opts.workers]
        # A table per database, then per worker count, as the report reads them.
        return [r for name in opts.databases for rs in by_workers for r in rs if r.name == name]


def sides(opts: Options, stack: ExitStack) -> list[Code] | None:
    """With --baseline: the baseline's code and the current code, worktrees held open by
    `stack`; otherwise None (the installed bytespike only)."""
    if opts.baseline is None:
        return None
    codes = revisions.compared(stack, opts.baseline, opts.current)
    for code in codes:
        log(f"{code.side}: {code.described}, {code.src}")
    return list(codes)


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
        "models": opts.models,
        "repeat": opts.repeat,
    }
    if codes:
        settings |= {code.side: code.described for code in codes}
    report.write(opts.out, machine, settings, outcome)
    results.write_json(opts.out.with_suffix(".json"), machine, settings, outcome)
    log(f"wrote {opts.out} and {opts.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
