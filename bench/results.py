"""The shape of a benchmark's results, the targets they are judged against, and their JSON.

Targets (one `bytespike serve` worker on the benchmark machine): added p50 latency at
concurrency 1 ≤ 1 ms, ≥ 1,000 metered non-streaming calls/s at concurrency 16, and peak
RSS ≤ 120 MB. They are reported, never asserted: one run on a noisy machine is a sample.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from measure import Measurement
from procstat import Machine

ADDED_P50_LIMIT_MS = 1.0
RPS_FLOOR = 1000.0
RSS_LIMIT_MB = 120.0


@dataclass(frozen=True, slots=True)
class Row:
    mode: str  # "non-streaming" or "streaming"
    concurrency: int
    direct: Measurement  # straight to the fake upstream; CPU and RSS are the fake's
    gateway: Measurement | None  # through bytespike; CPU and RSS are the gateway's

    @property
    def added_p50_ms(self) -> float | None:
        if self.gateway is None:
            return None
        return float(self.gateway.load["p50_ms"] - self.direct.load["p50_ms"])


@dataclass
class DatabaseResult:
    name: str  # "sqlite", "postgres", or "direct only"
    rows: list[Row] = field(default_factory=list)
    start_rss_mb: float | None = None  # the gateway's, once it answered /healthz
    metering: dict[str, Any] = field(default_factory=dict)

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


def targets(result: DatabaseResult) -> list[Target]:
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


def write_json(
    path: Path, machine: Machine, settings: dict[str, Any], results: list[DatabaseResult]
) -> None:
    document = {
        "machine": asdict(machine),
        "settings": settings,
        "databases": [
            {
                **asdict(result),
                "rows": [{**asdict(r), "added_p50_ms": r.added_p50_ms} for r in result.rows],
                "targets": [asdict(t) for t in targets(result)],
            }
            for result in results
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
