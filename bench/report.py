"""bench/results.md: the machine, the method, one table per database, the comparison with a
baseline (`--baseline REF` only), the targets and issue 13's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from procstat import Machine
from results import (
    BY_ROUND,
    COMPARED,
    TITLES,
    Comparison,
    DatabaseResult,
    Goal,
    Row,
    Target,
    comparisons,
    issue_13,
    targets,
)

METHOD = """\
- A fake OpenAI-compatible upstream (`bench/fake_upstream.py`, raw asyncio HTTP/1.1 with
  precomputed answers) and one `bytespike serve` process (one worker, uvloop), both on
  loopback. Its catalog is the shipped one with `bench-model` added, an
  `openai-compatible` entry pointing at the fake; rows named after a model, such as
  *non-streaming (gpt-5-4)*, ask for that shipped `openai` model instead, served on the
  `openai` provider's path with `OPENAI_BASE_URL` pointing at the fake. Models in this
  run: {model_list}.
- Tables titled *N workers* run `bytespike serve --workers N` instead (the kernel spreads
  the load generator's connections over the workers; at concurrency 1 its one connection
  stays with one worker); their CPU time and RSS are summed over the supervisor, its
  workers and multiprocessing's resource tracker.
- The load generator (`bench/loadgen.py`, aiohttp on uvloop, its own process) keeps
  *concurrency* requests in flight on as many keep-alive connections, for {warmup:g} s of
  warm-up and then {duration:g} s measured. Latency is send to last byte (streams are read
  to `data: [DONE]`); percentiles are nearest-rank over the measured requests.
- Each row first runs straight at the fake upstream ("direct"), then through bytespike
  with full metering: key authentication, rate limit, hold, upstream call, settlement and
  usage record. *Added p50* = gateway p50 minus direct p50. The databases' gateways are up
  at once, and each row runs through them one after the other, the first alternating from
  row to row (and round to round), so that both meet the same moments of the machine.
- *CPU ms/req* is the gateway's user + system CPU time (`/proc/<pid>/stat`) over the
  whole load-generator run divided by the requests finished in it; *peak RSS* is its
  `VmHWM` after the row. In direct-only tables both are the fake upstream's.
- *PG CPU ms/req* (PostgreSQL tables) is the same for the whole PostgreSQL server: the
  user and system CPU time of every process named `postgres` (postmaster, backends, WAL
  writer, checkpointer ..., and backends that exited meanwhile, through the postmaster's
  reaped children's time), so the WAL writer's share of a commit counts too. It is the
  server's, not the bench database's: other databases on it are assumed idle meanwhile.
- The load generator, the fake upstream and the gateway share the machine's cores, so
  throughput is a floor for what the gateway alone could do. {repetition}
"""

ONE_RUN = "One run, no repetition: read ratios\n  and orders of magnitude, not the last digit."
REPEATED = (
    "Each gateway row was run {repeat}\n"
    "  times; it shows the median of each figure (so not necessarily one run's; counts and\n"
    "  errors are summed). Read ratios and orders of magnitude, not the last digit."
)

COMPARISON_METHOD = """\
- Baseline comparison (`--baseline`), two sides:
  - baseline: {baseline}
  - current: {current}

  Each side's gateway and its provisioning commands run that tree's `src/` with the same
  interpreter and venv (`PYTHONPATH=<tree>/src` through `bench/launch.py`, which refuses
  any other copy of `bytespike`), each on its own fresh database; both gateways are up for
  the whole database section and share the fake upstream. For every row the direct run
  comes first, then the two gateways one after the other under the same load, taking turns
  on which goes first (with `--repeat`, in rounds: both sides back to back in each
  round, the first alternating from round to round). The per-database tables below are
  the current code's; the baseline's numbers are in the comparison table after them.
"""


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _machine(machine: Machine) -> str:
    return (
        f"- CPU: {machine.cpu_model}, {machine.cores} cores available\n"
        f"- RAM: {machine.ram_gb:g} GB; Linux {machine.kernel}; Python {machine.python}\n"
        f"- Run: {machine.date}; load average at start {machine.load_average}\n"
    )


HEADER = (
    "| mode | conc. | direct req/s | direct p50 ms | direct p99 ms | gateway req/s "
    "| gateway p50 ms | gateway p99 ms | added p50 ms | CPU ms/req | PG CPU ms/req | peak RSS MB "
    "| errors |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
)


def _row(row: Row) -> str:
    direct, gateway = row.direct, row.gateway
    served = gateway or direct
    errors = direct.load["errors"] + (gateway.load["errors"] if gateway else 0)
    cells = [
        row.mode,
        str(row.concurrency),
        _num(direct.load["rps"], 0),
        _num(direct.load["p50_ms"]),
        _num(direct.load["p99_ms"]),
        _num(gateway.load["rps"], 0) if gateway else "—",
        _num(gateway.load["p50_ms"]) if gateway else "—",
        _num(gateway.load["p99_ms"]) if gateway else "—",
        _num(row.added_p50_ms),
        _num(served.cpu_ms_per_request, 3),
        _num(served.postgres_cpu_ms_per_request, 3),
        _num(served.peak_rss_mb, 1),
        str(errors),
    ]
    return "| " + " | ".join(cells) + " |\n"


def _metering(metering: dict[str, Any]) -> str:
    if not metering:
        return ""
    lines = [
        f"- {label}: {value if value is not None else 'n/a'}" for label, value in metering.items()
    ]
    return "Metering check after the runs:\n\n" + "\n".join(lines) + "\n"


def _title(result: DatabaseResult) -> str:
    title = TITLES.get(result.name, result.name)
    return title if result.workers == 1 else f"{title}, {result.workers} workers"


def _table(result: DatabaseResult) -> str:
    title = _title(result)
    start = (
        f"Gateway RSS at start: {_num(result.start_rss_mb, 1)} MB.\n\n"
        if result.start_rss_mb
        else ""
    )
    if result.baseline is not None:
        start = f"The current code's gateway (the baseline's: *Baseline comparison*). {start}"
    body = "".join(_row(r) for r in result.rows)
    return f"## {title}\n\n{start}{HEADER}{body}\n{_metering(result.metering)}\n"


def _comparison_header(rounds: bool) -> str:
    cells = ["database", "mode", "conc."]
    for _, label in COMPARED:
        cells += [f"base {label}", f"cur {label}", "ratio"]
    cells.append("errors base / cur")
    if rounds:
        cells += [f"{label} ratio by round" for key, label in COMPARED if key in BY_ROUND]
    aligns = ["---", "---", "--:"] + ["--:"] * (len(cells) - 3)
    return "| " + " | ".join(cells) + " |\n|" + "|".join(aligns) + "|\n"


DIGITS = {"rps": 0, "cpu_ms_per_request": 3, "postgres_cpu_ms_per_request": 3}


def _comparison_row(title: str, comparison: Comparison) -> str:
    cells = [title, comparison.mode, str(comparison.concurrency)]
    for key, pair in comparison.metrics.items():
        digits = DIGITS.get(key, 2)
        cells += [_num(pair.baseline, digits), _num(pair.current, digits), _num(pair.ratio)]
    cells.append(" / ".join(_num(e, 0) for e in comparison.errors))
    if comparison.rounds:
        cells += [" ".join(_num(r) for r in comparison.rounds[key]) for key in BY_ROUND]
    return "| " + " | ".join(cells) + " |\n"


def _side_notes(result: DatabaseResult) -> str:
    base = result.baseline
    if base is None:
        return ""
    notes = (
        f"- {_title(result)}, gateway RSS at start / peak MB: baseline "
        f"{_num(base.start_rss_mb, 1)} / {_num(base.peak_rss_mb, 1)}, current "
        f"{_num(result.start_rss_mb, 1)} / {_num(result.peak_rss_mb, 1)}\n"
    )
    if base.metering:
        counts = "; ".join(f"{label}: {value}" for label, value in base.metering.items())
        notes += f"- {_title(result)}, the baseline's metering check: {counts}\n"
    return notes


def _comparison(results: list[DatabaseResult]) -> str:
    compared = [r for r in results if r.baseline is not None]
    if not compared:
        return ""
    found = [(_title(r), c) for r in compared for c in comparisons(r)]
    rounds = any(c.rounds for _, c in found)
    rows = "".join(_comparison_row(title, c) for title, c in found)
    notes = "".join(_side_notes(r) for r in compared)
    return (
        "## Baseline comparison\n\n"
        "*base* is the baseline's gateway, *cur* the current code's, *ratio* = cur / base "
        "(— when the baseline is not positive). Above 1 is better for req/s, below 1 for "
        "added latency and CPU. Both sides share each row's direct run."
        + (ROUND_NOTE if rounds else "")
        + f"\n\n{_comparison_header(rounds)}{rows}\n{notes}\n"
    )


ROUND_NOTE = (
    " The ratios are those of the medians; *by round* gives each round's own cur / base,"
    " the two sides measured back to back: their spread is the noise."
)


def _target(target: Target) -> str:
    verdict = {True: "pass", False: "**FAIL**", None: "not measured"}[target.passed]
    measured = _num(target.measured, target.digits)
    cells = [target.database, target.name, target.limit, measured, verdict]
    return "| " + " | ".join(cells) + " |\n"


def _targets(results: list[DatabaseResult]) -> str:
    through_gateway = [r for r in results if r.peak_rss_mb is not None]
    if not through_gateway:
        return ""
    rows = "".join(_target(t) for r in through_gateway for t in targets(r))
    return (
        "## Targets\n\n| database | target | limit | measured | verdict |\n"
        f"|---|---|---|--:|---|\n{rows}"
    )


ISSUE_13 = "## Targets (issue 13)"
VERDICTS = {True: "met", False: "**not met**", None: "not measured"}


def _goal_cell(goal: Goal) -> str:
    digits = 0 if goal.against is not None else 2
    value = _num(goal.measured, digits)
    if goal.against is not None:
        by_round = f"; by round {' '.join(_num(r) for r in goal.rounds)}" if goal.rounds else ""
        value += f" (SQLite {_num(goal.against, 0)}{by_round})"
    return f"{value} | {VERDICTS[goal.met]}"


def _issue_13(results: list[DatabaseResult], models: list[str]) -> str:
    """Issue 13's targets, a row each, a measured value and a verdict per model."""
    if not any(r.peak_rss_mb is not None and r.workers == 1 for r in results):
        return ""
    by_target: dict[tuple[str, str], list[Goal]] = {}
    for goal in issue_13(results, models):
        by_target.setdefault((goal.name, goal.limit), []).append(goal)
    cells = ["target", "limit"] + [cell for m in models for cell in (f"`{m}`", "verdict")]
    aligns = "|---|---|" + "--:|---|" * len(models)
    rows = "".join(
        f"| {name} | {limit} | " + " | ".join(_goal_cell(g) for g in goals) + " |\n"
        for (name, limit), goals in by_target.items()
    )
    return (
        f"\n{ISSUE_13}\n\n"
        "One worker, non-streaming, this run's tables; per model. CPU is per finished call "
        "(*CPU ms/req*, *PG CPU ms/req*).\n\n"
        "| " + " | ".join(cells) + f" |\n{aligns}\n{rows}"
    )


def write(
    path: Path, machine: Machine, settings: dict[str, Any], results: list[DatabaseResult]
) -> None:
    models = settings.get("models", [])
    repeat = settings.get("repeat", 1)
    repetition = ONE_RUN if repeat == 1 else REPEATED.format(repeat=repeat)
    listed = ", ".join(f"`{m}`" for m in models)
    method = METHOD.format(model_list=listed, repetition=repetition, **settings)
    if "baseline" in settings:
        method += COMPARISON_METHOD.format(**settings)
    text = (
        "# bytespike metering overhead\n\n"
        "Generated by `python bench/run.py`; see bench/README.md.\n\n"
        f"## Machine\n\n{_machine(machine)}\n"
        f"## Method\n\n{method}\n"
        + "".join(_table(r) for r in results)
        + _comparison(results)
        + _targets(results)
        + _issue_13(results, models)
    )
    path.write_text(text + _kept_sections(path), encoding="utf-8")


# Sections other benchmarks write into the same file (bench/reports.py, bench/console.py),
# kept as they are.
KEPT_SECTIONS = ("## Usage reports over 2 million calls", "## Console pages")


def _kept_sections(path: Path) -> str:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = []
    for heading in KEPT_SECTIONS:
        if (span := _section(old, heading)) is not None:
            kept.append("\n" + old[span[0] : span[1]].rstrip("\n") + "\n")
    return "".join(kept)


def _section(text: str, heading: str) -> tuple[int, int] | None:
    """Where `heading`'s section of `text` starts, and where the next `## ` heading (or the
    end) starts; None without it. The heading is a whole line ("## Targets" is not the
    start of "## Targets (issue 13)")."""
    found = re.search(f"^{re.escape(heading)}$", text, re.MULTILINE)
    if found is None:
        return None
    end = text.find("\n## ", found.end())
    return found.start(), len(text) if end < 0 else end


def replace_section(path: Path, heading: str, text: str) -> None:
    """Replace `heading`'s section of `path` by `text` (or append it), leaving the rest as it
    is: how bench/reports.py and bench/console.py write their sections of results.md."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    span = _section(old, heading)
    if span is None:
        new = old.rstrip("\n") + "\n\n" + text if old else text
    else:
        new = old[: span[0]] + text + old[span[1] :]
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")
