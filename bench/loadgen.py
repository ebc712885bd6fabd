"""A closed-loop HTTP load generator: N workers, each sending its next request as soon as
the last one finished, over one keep-alive aiohttp session.

Requests finishing during the warm-up are not measured. A request counts as an error if
its status is not 200 or its body carries no `usage` (a stream must also end in
`data: [DONE]`, or a Responses API stream in `response.completed`); the first error's
status and body are kept for the report. Streamed
answers are read to their end, so a latency is always the time to the last byte.

    python bench/loadgen.py --url URL --body JSON [--header "K: V"]... [--stream]
        [--concurrency 16] [--duration 10] [--warmup 2]

prints one JSON object (see `Result`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass, field

import aiohttp

ERROR_BODY_CHARS = 500
ERROR_BACKOFF_SECONDS = 0.01
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class LoadSpec:
    url: str
    body: bytes
    headers: dict[str, str]
    stream: bool
    concurrency: int
    duration: float
    warmup: float


@dataclass(frozen=True, slots=True)
class Result:
    concurrency: int
    duration_s: float
    requests: int  # measured: finished inside the measurement window, successful
    errors: int  # measured window only
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    total_requests: int  # every request finished, warm-up and errors included
    total_ok: int  # of those, the successful ones
    first_error: str | None


@dataclass
class Tally:
    """What the workers share: measured latencies and counts."""

    measure_from: int
    measure_until: int
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    total: int = 0
    total_ok: int = 0
    first_error: str | None = None

    def record(self, started: int, finished: int, error: str | None) -> None:
        self.total += 1
        self.total_ok += error is None
        if error is not None and self.first_error is None:
            self.first_error = error
        if not self.measure_from <= finished <= self.measure_until:
            return
        if error is None:
            self.latencies_ns.append(finished - started)
        else:
            self.errors += 1


def body_error(status: int, body: bytes, stream: bool) -> str | None:
    """None if the answer is a complete, metered one; else what was wrong with it."""
    ended = body.rstrip().endswith(b"data: [DONE]") or b"event: response.completed\n" in body
    complete = b'"usage"' in body and (not stream or ended)
    if status == 200 and complete:
        return None
    text = body[:ERROR_BODY_CHARS].decode(errors="replace")
    reason = "" if status != 200 else " (no usage or no [DONE])"
    return f"HTTP {status}{reason}: {text}"


async def one_request(session: aiohttp.ClientSession, spec: LoadSpec) -> str | None:
    try:
        async with session.post(spec.url, data=spec.body, headers=spec.headers) as response:
            return body_error(response.status, await response.read(), spec.stream)
    except (aiohttp.ClientError, TimeoutError) as exc:
        await asyncio.sleep(ERROR_BACKOFF_SECONDS)  # a refused connection must not spin
        return f"{type(exc).__name__}: {exc}"


async def worker(session: aiohttp.ClientSession, spec: LoadSpec, tally: Tally) -> None:
    while time.perf_counter_ns() < tally.measure_until:
        started = time.perf_counter_ns()
        error = await one_request(session, spec)
        tally.record(started, time.perf_counter_ns(), error)


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (0 when it is empty)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(spec: LoadSpec, tally: Tally) -> Result:
    latencies = sorted(tally.latencies_ns)
    mean = sum(latencies) / len(latencies) if latencies else 0.0
    return Result(
        concurrency=spec.concurrency,
        duration_s=spec.duration,
        requests=len(latencies),
        errors=tally.errors,
        rps=len(latencies) / spec.duration,
        p50_ms=percentile(latencies, 0.50) / 1e6,
        p99_ms=percentile(latencies, 0.99) / 1e6,
        mean_ms=mean / 1e6,
        total_requests=tally.total,
        total_ok=tally.total_ok,
        first_error=tally.first_error,
    )


async def run(spec: LoadSpec) -> Result:
    connector = aiohttp.TCPConnector(limit=spec.concurrency, limit_per_host=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        now = time.perf_counter_ns()
        start = now + int(spec.warmup * 1e9)
        tally = Tally(measure_from=start, measure_until=start + int(spec.duration * 1e9))
        async with asyncio.TaskGroup() as group:
            for _ in range(spec.concurrency):
                group.create_task(worker(session, spec, tally))
    return summarise(spec, tally)


def parse_args(argv: list[str] | None = None) -> LoadSpec:
    parser = argparse.ArgumentParser(description="Closed-loop HTTP load generator.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="JSON request body")
    parser.add_argument("--header", action="append", default=[], help='"Name: value"')
    parser.add_argument("--stream", action="store_true", help="expect an SSE answer")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    args = parser.parse_args(argv)
    headers = {"Content-Type": "application/json"}
    for header in args.header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    return LoadSpec(
        url=args.url,
        body=json.dumps(json.loads(args.body)).encode(),
        headers=headers,
        stream=args.stream,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
    )


def main() -> None:
    spec = parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
