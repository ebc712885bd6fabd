"""One measured run: the load generator in its own process against one URL, and what the
serving process spent meanwhile (CPU time per request, resident memory).

The load generator runs apart from the process it measures so the two never share a GIL;
CPU time is taken over the whole load-generator run (warm-up included) and divided by
every request that finished in it; on PostgreSQL, the database server's the same way.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procstat
from servers import BenchError

LOADGEN = str(Path(__file__).with_name("loadgen.py"))
PROMPT = [{"role": "user", "content": "Say hello"}]
SLACK_SECONDS = 60.0


def request_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": 16}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def responses_body(model: str, stream: bool) -> dict[str, Any]:
    """The same prompt as a Responses API request (stored, as by default)."""
    body: dict[str, Any] = {"model": model, "input": PROMPT, "max_output_tokens": 16}
    return body | {"stream": True} if stream else body


@dataclass(frozen=True, slots=True)
class Load:
    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    concurrency: int
    duration: float
    warmup: float

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def argv(self) -> list[str]:
        argv = [sys.executable, LOADGEN, "--url", self.url, "--body", json.dumps(self.body)]
        argv += ["--concurrency", str(self.concurrency)]
        argv += ["--duration", str(self.duration), "--warmup", str(self.warmup)]
        for name, value in self.headers.items():
            argv += ["--header", f"{name}: {value}"]
        return [*argv, "--stream"] if self.stream else argv


@dataclass(frozen=True, slots=True)
class Measurement:
    load: dict[str, Any]  # loadgen.Result as JSON
    cpu_ms_per_request: float | None
    peak_rss_mb: float
    rss_mb: float
    # The whole PostgreSQL server's CPU time per request (procstat.server_cpu_seconds);
    # None on SQLite and for direct runs.
    postgres_cpu_ms_per_request: float | None = None


def generate(load: Load) -> dict[str, Any]:
    """Run the load generator; its result."""
    # A fixed program (this interpreter and loadgen.py); the arguments are the bench's own.
    done = subprocess.run(  # noqa: S603
        load.argv(),
        capture_output=True,
        text=True,
        check=False,
        timeout=load.duration + load.warmup + SLACK_SECONDS,
    )
    if done.returncode != 0:
        raise BenchError(f"the load generator failed on {load.url}:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(load: Load, pid: int, *, postgres: bool = False) -> Measurement:
    """`load` against the server whose process is `pid`; with `postgres`, the PostgreSQL
    server's CPU time too (the gateway's database, other databases on it idle)."""
    pg_before = procstat.server_cpu_seconds() if postgres else None
    before = procstat.sample(pid)
    result = generate(load)
    after = procstat.sample(pid)
    pg_after = procstat.server_cpu_seconds() if postgres else None
    finished = result["total_requests"]

    def per_request(seconds: float) -> float | None:
        return seconds * 1000 / finished if finished else None

    pg_seconds = None if pg_before is None or pg_after is None else pg_after - pg_before
    return Measurement(
        load=result,
        cpu_ms_per_request=per_request(after.cpu_seconds - before.cpu_seconds),
        peak_rss_mb=after.peak_rss_mb,
        rss_mb=after.rss_mb,
        postgres_cpu_ms_per_request=None if pg_seconds is None else per_request(pg_seconds),
    )


# Figures of a run that repeated runs report as their median; counts are summed instead.
MEDIAN_LOAD = ("rps", "p50_ms", "p99_ms", "mean_ms")
SUMMED_LOAD = ("requests", "errors", "total_requests", "total_ok")


def median_of(runs: list[Measurement]) -> Measurement:
    """Repeated runs of one load as one: each figure the median of the runs' (so not
    necessarily one run's), the counts summed, the first error kept, the peak the highest."""
    if len(runs) == 1:
        return runs[0]
    load = dict(runs[0].load)
    for name in MEDIAN_LOAD:
        load[name] = statistics.median(r.load[name] for r in runs)
    for name in SUMMED_LOAD:
        load[name] = sum(r.load[name] for r in runs)
    load["first_error"] = next((r.load["first_error"] for r in runs if r.load["first_error"]), None)

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    return Measurement(
        load=load,
        cpu_ms_per_request=median([r.cpu_ms_per_request for r in runs]),
        peak_rss_mb=max(r.peak_rss_mb for r in runs),
        rss_mb=runs[-1].rss_mb,
        postgres_cpu_ms_per_request=median([r.postgres_cpu_ms_per_request for r in runs]),
    )
