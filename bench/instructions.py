"""Machine instructions per metered call, counted by callgrind: a before-and-after that the
machine's noise does not move.

    python bench/instructions.py --baseline REF [--current REF] [--databases sqlite,postgres]
                                 [--calls 300] [--warmup 60] [--model bench-model]
                                 [--out bench/instructions.md] [--keep]

Each side's gateway (as in run.py's --baseline: REF in a temporary worktree, the working
tree or --current REF beside it, each on its own fresh database, provisioned by its own CLI)
runs under valgrind's callgrind, with instrumentation off while it starts. After --warmup
calls (caches filled, statements compiled) it is switched on for --calls non-streaming
calls made one after another, then the counts are dumped. Cache and branch simulation add
first-level and last-level cache misses and mispredicted branches, and a cycle estimate
weighs them as KCachegrind's does (without its bus events): instructions + 10 x (L1
misses + mispredicted branches) + 100 x last-level misses. Under callgrind a call takes
~50 times as long, so the gateway's timers (hold sweeper, webhook poller) weigh ~50 times
as much per call as at full speed: alike on both sides. Writes the Markdown report to
--out and the numbers as JSON beside it (.json). Needs valgrind (`make valgrind`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import gateway
import revisions
from measure import request_body
from revisions import Code
from servers import BenchError, Service, fake_upstream

HERE = Path(__file__).parent
START_SECONDS = 300.0  # a gateway's start-up under valgrind takes tens of seconds
# callgrind's event names: instructions; L1 instruction, data-read and data-write misses;
# the same at the last level; conditional and indirect branches mispredicted.
EVENTS = ("Ir", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw", "Bcm", "Bim")


@dataclass(frozen=True, slots=True)
class Counts:
    """Per call: instructions, L1 and last-level misses, mispredicted branches."""

    instructions: float
    l1_misses: float
    ll_misses: float
    mispredicts: float

    @property
    def cycles(self) -> float:
        """KCachegrind's cycle estimate."""
        return self.instructions + 10 * (self.l1_misses + self.mispredicts) + 100 * self.ll_misses


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the git ref to compare with")
    parser.add_argument("--current", help="a git ref to measure instead of the working tree")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--calls", type=int, default=300, help="calls counted per side")
    parser.add_argument("--warmup", type=int, default=60, help="calls before counting")
    parser.add_argument("--model", default=gateway.MODEL)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--out", type=Path, default=HERE / "instructions.md")
    parser.add_argument(
        "--keep", action="store_true", help="keep the dumps (for callgrind_annotate)"
    )
    return parser.parse_args()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def calls(port: int, key: str, model: str, count: int) -> None:
    """`count` non-streaming calls on one keep-alive connection, each answered 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps(request_body(model, False))
    headers = {**gateway.auth(key), "Content-Type": "application/json"}
    try:
        for _ in range(count):
            conn.request("POST", "/v1/chat/completions", body, headers)
            reply = conn.getresponse()
            text = reply.read()
            if reply.status != 200:
                raise BenchError(f"the gateway answered {reply.status}: {text[:500]!r}")
    finally:
        conn.close()


def control(*args: str) -> None:
    # A fixed program; the arguments are ours.
    done = subprocess.run(["callgrind_control", *args], capture_output=True, check=False)  # noqa: S603, S607
    if done.returncode != 0:
        raise BenchError(f"callgrind_control {' '.join(args)} failed: {done.stderr!r}")


def counted(
    opts: argparse.Namespace, upstream: Service, name: str, directory: Path, code: Code
) -> Counts:
    """One side's gateway under callgrind: its counts per call."""
    valgrind = (
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes",
        "--branch-sim=yes", f"--callgrind-out-file={directory / 'callgrind.out'}",
    )  # fmt: skip
    with gateway.served(
        code, name, directory, opts.postgres, upstream.url,
        suffix=f"_{code.side}", wrapper=valgrind, ready_seconds=START_SECONDS,
    ) as up:  # fmt: skip
        pid = str(up.service.pid)
        code.confirm("bytespike serve", up.log.read_text(errors="replace"))
        calls(up.port, up.key, opts.model, opts.warmup)
        control("--instr=on", pid)
        calls(up.port, up.key, opts.model, opts.calls)
        control("--dump", pid)  # the first dump: callgrind.out.1
        control("--instr=off", pid)
        dump = directory / "callgrind.out.1"
        if not dump.is_file():
            raise BenchError(f"callgrind wrote no dump in {directory}")
        return per_call(_summary(dump), opts.calls)


def _summary(dump: Path) -> dict[str, int]:
    """The dump's event totals by name."""
    names: list[str] = []
    for line in dump.read_text().splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("summary:"):
            return dict(zip(names, map(int, line.split()[1:]), strict=True))
    raise BenchError(f"{dump} has no summary line")


def per_call(totals: dict[str, int], count: int) -> Counts:
    missing = [e for e in EVENTS if e not in totals]
    if missing:
        raise BenchError(f"callgrind counted no {', '.join(missing)}")
    return Counts(
        instructions=totals["Ir"] / count,
        l1_misses=(totals["I1mr"] + totals["D1mr"] + totals["D1mw"]) / count,
        ll_misses=(totals["ILmr"] + totals["DLmr"] + totals["DLmw"]) / count,
        mispredicts=(totals["Bcm"] + totals["Bim"]) / count,
    )


def report(opts: argparse.Namespace, sides: list[Code], rows: dict[str, dict[str, Counts]]) -> str:
    lines = [
        "# Instructions per metered call (callgrind)",
        "",
        "Generated by `python bench/instructions.py`; see bench/README.md, *Instructions*.",
        "",
        f"- Calls counted per side: {opts.calls}, after {opts.warmup} uncounted; "
        f"non-streaming, one at a time, model `{opts.model}`.",
        *(f"- {code.side}: {code.described}" for code in sides),
        "",
        "| database | side | instructions | L1 misses | LL misses | mispredicted branches "
        "| cycle estimate |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for name, by_side in rows.items():
        for side, c in by_side.items():
            lines.append(
                f"| {name} | {side} | {c.instructions:,.0f} | {c.l1_misses:,.0f} "
                f"| {c.ll_misses:,.0f} | {c.mispredicts:,.0f} | {c.cycles:,.0f} |"
            )
        base, cur = by_side["baseline"], by_side["current"]
        lines.append(
            f"| {name} | ratio | {cur.instructions / base.instructions:.3f} "
            f"| {cur.l1_misses / base.l1_misses:.3f} | {cur.ll_misses / base.ll_misses:.3f} "
            f"| {cur.mispredicts / base.mispredicts:.3f} | {cur.cycles / base.cycles:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    opts = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bytespike-instructions-"))
    rows: dict[str, dict[str, Counts]] = {}
    try:
        with ExitStack() as stack:
            baseline, current = revisions.compared(stack, opts.baseline, opts.current)
            upstream = stack.enter_context(fake_upstream(workdir))
            for name in opts.databases.split(","):
                rows[name] = {}
                for code in (baseline, current):
                    log(f"{name}: {code.side} under callgrind")
                    counts = counted(opts, upstream, name, workdir / name / code.side, code)
                    rows[name][code.side] = counts
                    log(f"  {counts.instructions:,.0f} instructions a call")
        opts.out.write_text(report(opts, [baseline, current], rows))
        data = {
            n: {s: {**asdict(c), "cycles": c.cycles} for s, c in r.items()} for n, r in rows.items()
        }
        opts.out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    except BenchError as exc:
        log(f"failed: {exc}\n(work directory kept: {workdir})")
        return 1
    if opts.keep:
        log(f"the dumps: {workdir}/<database>/<side>/callgrind.out.*")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
