"""CPU time per metered call of two revisions' gateways, compared in many short rounds.

    python bench/percall.py --baseline REF [--current REF] [--databases sqlite,postgres]
                            [--rounds 100] [--calls 200] [--warmup 300] [--model bench-model]
                            [--out bench/percall.md]

run.py's rounds last seconds each and take turns a few times: on a shared machine two of
them may differ by 10-20 %, which hides a change of a few percent at concurrency 1. Here
both sides' gateways (as in run.py's --baseline: REF in a temporary worktree, the working
tree or --current REF beside it, each on its own fresh database, provisioned by its own CLI)
are up at once, and each round makes --calls non-streaming calls to one side then the
other, one at a time, the first side alternating. A round's CPU time is read from each
thread's /proc schedstat (nanoseconds, not the 10 ms ticks of /proc/<pid>/stat), and on
PostgreSQL the server's too (every `postgres` process, as run.py reads it: the sides never
run at once, so a round's server time is its side's; that one is in clock ticks, 10 ms, so
only a median over many rounds is worth reading). The report gives each side's median
per call, and the median of the rounds' own ratios with their interquartile range: the
spread of a ratio measured back to back, i.e. the noise left.

What it leaves out: concurrency (batches of one call, two per call: the hold and the
settlement), streaming, and the client's and the fake upstream's CPU. Writes the Markdown
report to --out and the numbers as JSON beside it (.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import gateway
import procstat
import revisions
from instructions import calls
from revisions import Code
from servers import BenchError, Service, fake_upstream

HERE = Path(__file__).parent


@dataclass(slots=True)
class Side:
    """One side's gateway, and what each of its rounds cost per call (microseconds)."""

    pid: int
    port: int
    key: str
    cpu: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)  # PostgreSQL's CPU
    wall: list[float] = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the git ref to compare with")
    parser.add_argument("--current", help="a git ref to measure instead of the working tree")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--calls", type=int, default=200, help="calls per side and round")
    parser.add_argument("--warmup", type=int, default=300, help="calls per side first")
    parser.add_argument("--model", default=gateway.MODEL)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--out", type=Path, default=HERE / "percall.md")
    return parser.parse_args()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def on_cpu_seconds(pid: int) -> float:
    """The time `pid`'s live threads have run, from schedstat (a thread that exited is left
    out: the gateway's threads, the SQLite writer's and the executor's, live as long as it)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


def started(stack: ExitStack, opts: argparse.Namespace, name: str, upstream: Service,
            directory: Path, code: Code) -> Side:  # fmt: skip
    """`code`'s gateway on a fresh database, provisioned and warmed up."""
    up = stack.enter_context(
        gateway.served(code, name, directory, opts.postgres, upstream.url, suffix=f"_{code.side}")
    )
    code.confirm("bytespike serve", up.log.read_text(errors="replace"))
    calls(up.port, up.key, opts.model, opts.warmup)
    return Side(up.service.pid, up.port, up.key)


def measured(side: Side, opts: argparse.Namespace, postgres: bool) -> None:
    """One round of one side."""
    server = procstat.server_cpu_seconds() if postgres else 0.0
    cpu = on_cpu_seconds(side.pid)
    wall = time.perf_counter()
    calls(side.port, side.key, opts.model, opts.calls)
    scale = 1e6 / opts.calls
    side.wall.append((time.perf_counter() - wall) * scale)
    side.cpu.append((on_cpu_seconds(side.pid) - cpu) * scale)
    if postgres:
        side.server.append((procstat.server_cpu_seconds() - server) * scale)


def compared(opts: argparse.Namespace, name: str, upstream: Service, workdir: Path,
             codes: tuple[Code, Code]) -> dict[str, object]:  # fmt: skip
    postgres = name == "postgres"
    with ExitStack() as stack:
        base, cur = (started(stack, opts, name, upstream, workdir / c.side, c) for c in codes)
        for number in range(opts.rounds):
            for side in (base, cur) if number % 2 == 0 else (cur, base):
                measured(side, opts, postgres)
    figures: dict[str, object] = {
        "cpu": _figures(base.cpu, cur.cpu),
        "wall": _figures(base.wall, cur.wall),
    }
    if postgres:
        figures["server"] = _figures(base.server, cur.server)
    return figures


def _figures(base: list[float], cur: list[float]) -> dict[str, float]:
    ratios = sorted(c / b for b, c in zip(base, cur, strict=True) if b > 0)
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "baseline_us": statistics.median(base),
        "current_us": statistics.median(cur),
        "ratio_of_medians": statistics.median(cur) / statistics.median(base),
        "median_ratio": statistics.median(ratios),
        "ratio_q1": quartiles[0],
        "ratio_q3": quartiles[2],
    }


_ROWS = (
    ("cpu", "gateway CPU per call"),
    ("server", "PostgreSQL CPU per call"),
    ("wall", "wall time per call (the client's)"),
)


def report(opts: argparse.Namespace, codes: tuple[Code, Code], rows: dict[str, dict[str, object]],
           when: str) -> str:  # fmt: skip
    lines = [
        "# CPU per metered call, two revisions in short rounds",
        "",
        "Generated by `python bench/percall.py`; see bench/README.md, *CPU per call*.",
        "",
        f"- {when}",
        f"- {opts.rounds} rounds of {opts.calls} non-streaming calls per side, one at a time "
        f"(concurrency 1), after {opts.warmup} uncounted; model `{opts.model}`.",
        *(f"- {code.side}: {code.described}" for code in codes),
        "",
        "| database | figure | baseline µs | current µs | ratio of medians "
        "| median of rounds' ratios | its interquartile range |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for name, figures in rows.items():
        for key, label in _ROWS:
            f = figures.get(key)
            if not isinstance(f, dict):
                continue
            lines.append(
                f"| {name} | {label} | {f['baseline_us']:,.1f} | {f['current_us']:,.1f} "
                f"| {f['ratio_of_medians']:.3f} | {f['median_ratio']:.3f} "
                f"| {f['ratio_q1']:.3f} to {f['ratio_q3']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    opts = parse_args()
    machine = procstat.machine()
    when = (
        f"Run {machine.date}; {machine.cpu_model}, {machine.cores} cores; "
        f"load average at start {machine.load_average}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bytespike-percall-"))
    rows: dict[str, dict[str, object]] = {}
    try:
        with ExitStack() as stack:
            baseline, current = revisions.compared(stack, opts.baseline, opts.current)
            codes = (baseline, current)
            upstream = stack.enter_context(fake_upstream(workdir))
            for name in opts.databases.split(","):
                log(f"{name}: {opts.rounds} rounds")
                rows[name] = compared(opts, name, upstream, workdir / name, codes)
                cpu = rows[name]["cpu"]
                assert isinstance(cpu, dict)
                log(f"  gateway CPU per call, current / baseline: {cpu['median_ratio']:.3f}")
    except BenchError as exc:
        log(f"failed: {exc}\n(work directory kept: {workdir})")
        return 1
    opts.out.write_text(report(opts, codes, rows, when))
    opts.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    log(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
