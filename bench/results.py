"""The shape of a benchmark's results, the targets they are judged against, the comparison
with a baseline's (`--baseline REF`), and their JSON.

Targets (one `bytespike serve` worker on the benchmark machine): added p50 latency at
concurrency 1 ≤ 1 ms, ≥ 1,000 metered non-streaming calls/s at concurrency 16, and peak
RSS ≤ 120 MB; and issue 13's, per model, across the databases of one run (`issue_13`).
They are reported, never asserted: one run on a noisy machine is a sample.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from gateway import MODEL
from measure import Measurement
from procstat import Machine

ADDED_P50_LIMIT_MS = 1.0
RPS_FLOOR = 1000.0
RSS_LIMIT_MB = 120.0
# Issue 13 (one worker, non-streaming): PostgreSQL's calls/s at concurrency 16 at least
# SQLite's, and these limits.
ISSUE_13_ADDED_P50_MS = {"postgres": 1.2, "sqlite": 0.6}  # concurrency 1
ISSUE_13_POSTGRES_CPU_MS = 0.15  # the whole server's, per call, concurrency 16
ISSUE_13_GATEWAY_CPU_MS = 0.35  # per call, concurrency 16, on either database
TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def label(mode: str, model: str) -> str:
    """A row's mode as the tables show it: the bench model's bare, another's named."""
    return mode if model == MODEL else f"{mode} ({model})"


@dataclass(frozen=True, slots=True)
class Row:
    mode: str  # "non-streaming", "streaming", "responses ..."; another model's: label()
    concurrency: int
    direct: Measurement  # straight to the fake upstream; CPU and RSS are the fake's
    gateway: Measurement | None  # through bytespike; CPU and RSS are the gateway's
    model: str = MODEL  # the catalog id the gateway was asked for
    # With --repeat: each round's run through the gateway; `gateway` is their median.
    rounds: tuple[Measurement, ...] = ()

    @property
    def added_p50_ms(self) -> float | None:
        if self.gateway is None:
            return None
        return float(self.gateway.load["p50_ms"] - self.direct.load["p50_ms"])

    @property
    def added_p99_ms(self) -> float | None:
        if self.gateway is None:
            return None
        return float(self.gateway.load["p99_ms"] - self.direct.load["p99_ms"])


@dataclass
class DatabaseResult:
    name: str  # "sqlite", "postgres", or "direct only"
    workers: int = 1  # `serve --workers`; the targets are judged on one worker's results
    rows: list[Row] = field(default_factory=list)
    start_rss_mb: float | None = None  # the gateway's, once it answered /healthz
    metering: dict[str, Any] = field(default_factory=dict)
    # With --baseline: the same runs through the baseline's gateway (its own database). The
    # rows share their direct runs with these; the gateways took turns on each row.
    baseline: DatabaseResult | None = None

    def row(self, mode: str, concurrency: int) -> Row | None:
        return next((r for r in self.rows if (r.mode, r.concurrency) == (mode, concurrency)), None)

    @property
    def peak_rss_mb(self) -> float | None:
        peaks = [r.gateway.peak_rss_mb for r in self.rows if r.gateway]
        return max(peaks) if peaks else None


@dataclass(frozen=True, slots=True)
class Target:
    database: str
    name: str
    measured: float | None
    limit: str
    passed: bool | None  # None: not measured
    digits: int = 2  # decimals the report shows of `measured`


def targets(result: DatabaseResult) -> list[Target]:
    if result.workers != 1:
        return []  # set for one worker; more workers' rows are reported beside them
    found: list[Target] = []
    for mode in ("non-streaming", "streaming"):
        row = result.row(mode, 1)
        added = row.added_p50_ms if row else None
        found.append(
            Target(
                result.name,
                f"added p50 latency, {mode}, concurrency 1",
                added,
                f"≤ {ADDED_P50_LIMIT_MS:g} ms",
                None if added is None else added <= ADDED_P50_LIMIT_MS,
            )
        )
    row = result.row("non-streaming", 16)
    rps = float(row.gateway.load["rps"]) if row and row.gateway else None
    found.append(
        Target(
            result.name,
            "metered non-streaming calls/s, concurrency 16",
            rps,
            f"≥ {RPS_FLOOR:,.0f}/s",
            None if rps is None else rps >= RPS_FLOOR,
            digits=0,  # a median of rounds' rates has decimals that mean nothing
        )
    )
    peak = result.peak_rss_mb
    found.append(
        Target(
            result.name,
            "peak RSS of the gateway",
            peak,
            f"≤ {RSS_LIMIT_MB:g} MB",
            None if peak is None else peak <= RSS_LIMIT_MB,
        )
    )
    return found


@dataclass(frozen=True, slots=True)
class Goal:
    """One of issue 13's targets for one model."""

    name: str
    limit: str
    model: str
    measured: float | None
    met: bool | None  # None: not measured
    against: float | None = None  # what `measured` must reach, when it is another measure
    # With `against`, and --repeat: each round's measured / against, the two taken in turns.
    rounds: tuple[float, ...] = ()


def issue_13(results: list[DatabaseResult], models: list[str]) -> list[Goal]:
    """Issue 13's targets for each model, from this run's one-worker results."""
    one = {r.name: r for r in results if r.workers == 1}

    def measured(name: str, model: str, concurrency: int) -> Row | None:
        result = one.get(name)
        row = result.row(label("non-streaming", model), concurrency) if result else None
        return row if row and row.gateway else None

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    found: list[Goal] = []
    for model in models:
        pg, lite = measured("postgres", model, 16), measured("sqlite", model, 16)
        pg_rps = float(pg.gateway.load["rps"]) if pg and pg.gateway else None
        lite_rps = float(lite.gateway.load["rps"]) if lite and lite.gateway else None
        met = None if pg_rps is None or lite_rps is None else pg_rps >= lite_rps
        # Each round's PostgreSQL / SQLite calls/s: the two ran back to back in it.
        rounds = compare(lite, pg).rounds.get("rps", ()) if pg and lite else ()
        found.append(
            Goal(
                "PostgreSQL calls/s, concurrency 16",
                "≥ SQLite's",
                model,
                pg_rps,
                met,
                lite_rps,
                rounds,
            )
        )
        for name, limit in ISSUE_13_ADDED_P50_MS.items():
            row = measured(name, model, 1)
            added = row.added_p50_ms if row else None
            goal = f"added p50, concurrency 1, {TITLES[name]}"
            found.append(Goal(goal, f"≤ {limit:g} ms", model, added, at_most(added, limit)))
        pg_cpu = pg.gateway.postgres_cpu_ms_per_request if pg and pg.gateway else None
        limit = ISSUE_13_POSTGRES_CPU_MS
        found.append(
            Goal(
                "PostgreSQL server CPU ms per call, concurrency 16",
                f"≤ {limit:g} ms",
                model,
                pg_cpu,
                at_most(pg_cpu, limit),
            )
        )
        for name, row in (("postgres", pg), ("sqlite", lite)):
            cpu = row.gateway.cpu_ms_per_request if row and row.gateway else None
            limit = ISSUE_13_GATEWAY_CPU_MS
            goal = f"gateway CPU ms per call, concurrency 16, {TITLES[name]}"
            found.append(Goal(goal, f"≤ {limit:g} ms", model, cpu, at_most(cpu, limit)))
    return found


# What the comparison sets side by side: (key, what it is), each read off a row's gateway.
COMPARED = (
    ("rps", "req/s"),
    ("added_p50_ms", "added p50 ms"),
    ("added_p99_ms", "added p99 ms"),
    ("cpu_ms_per_request", "CPU ms/req"),
    ("postgres_cpu_ms_per_request", "PG CPU ms/req"),
)


# What the comparison also gives round by round (with --repeat): each round's cur / base,
# read off the two runs of that round.
BY_ROUND: dict[str, Callable[[Measurement], float | None]] = {
    "rps": lambda run: float(run.load["rps"]),
    "cpu_ms_per_request": lambda run: run.cpu_ms_per_request,
}


def _compared_values(row: Row) -> dict[str, float | None]:
    if row.gateway is None:
        return dict.fromkeys(key for key, _ in COMPARED)
    return {
        "rps": float(row.gateway.load["rps"]),
        "added_p50_ms": row.added_p50_ms,
        "added_p99_ms": row.added_p99_ms,
        "cpu_ms_per_request": row.gateway.cpu_ms_per_request,
        "postgres_cpu_ms_per_request": row.gateway.postgres_cpu_ms_per_request,
    }


@dataclass(frozen=True, slots=True)
class Pair:
    baseline: float | None
    current: float | None

    @property
    def ratio(self) -> float | None:
        """current / baseline; None when either is missing or the baseline is not positive."""
        if self.baseline is None or self.current is None or self.baseline <= 0:
            return None
        return self.current / self.baseline


@dataclass(frozen=True, slots=True)
class Comparison:
    mode: str
    concurrency: int
    metrics: dict[str, Pair]  # keyed as COMPARED
    errors: tuple[int | None, int | None]  # failed measured requests: baseline's, current's
    # With --repeat: cur / base of each round (the two sides ran back to back), for req/s
    # and CPU ms/req: how far apart the rounds were is the noise the medians smooth.
    rounds: dict[str, tuple[float, ...]] = field(default_factory=dict)


def _errors(row: Row) -> int | None:
    return int(row.gateway.load["errors"]) if row.gateway else None


def compare(base: Row, row: Row) -> Comparison:
    """One row beside the baseline's same row."""
    current, baseline = _compared_values(row), _compared_values(base)
    metrics = {key: Pair(baseline[key], current[key]) for key, _ in COMPARED}
    rounds: dict[str, tuple[float, ...]] = {}
    if len(row.rounds) > 1 and len(base.rounds) == len(row.rounds):
        for key, read in BY_ROUND.items():
            pairs = ((read(b), read(c)) for b, c in zip(base.rounds, row.rounds, strict=True))
            rounds[key] = tuple(c / b for b, c in pairs if b and c is not None)
    errors = (_errors(base), _errors(row))
    return Comparison(row.mode, row.concurrency, metrics, errors, rounds)


def comparisons(result: DatabaseResult) -> list[Comparison]:
    """Each row of `result` beside the baseline's same row; empty without a baseline."""
    if result.baseline is None:
        return []
    pairs = ((result.baseline.row(r.mode, r.concurrency), r) for r in result.rows)
    return [compare(base, row) for base, row in pairs if base is not None]


def _pair_json(pair: Pair) -> dict[str, float | None]:
    return {"baseline": pair.baseline, "current": pair.current, "ratio": pair.ratio}


def _database_json(result: DatabaseResult) -> dict[str, Any]:
    document = {
        **{f.name: getattr(result, f.name) for f in fields(result) if f.name != "baseline"},
        "rows": [{**asdict(r), "added_p50_ms": r.added_p50_ms} for r in result.rows],
        "targets": [asdict(t) for t in targets(result)],
    }
    if result.baseline is not None:
        document["baseline"] = _database_json(result.baseline)
        document["comparison"] = [
            {
                "mode": c.mode,
                "concurrency": c.concurrency,
                **{key: _pair_json(pair) for key, pair in c.metrics.items()},
                "errors": dict(zip(("baseline", "current"), c.errors, strict=True)),
                "round_ratios": c.rounds,
            }
            for c in comparisons(result)
        ]
    return document


def write_json(
    path: Path, machine: Machine, settings: dict[str, Any], results: list[DatabaseResult]
) -> None:
    document = {
        "machine": asdict(machine),
        "settings": settings,
        "databases": [_database_json(result) for result in results],
        "issue_13_targets": [asdict(g) for g in issue_13(results, settings.get("models", []))],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
