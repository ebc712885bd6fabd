"""One measured run: the load generator in its own process against one URL, and what the
serving process spent meanwhile (CPU time per request, resident memory).

The load generator runs apart from the process it measures so the two never share a GIL;
CPU time is taken over the whole load-generator run (warm-up included) and divided by
every request that finished in it.
"""

from __future__ import annotations

import json
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


def measure(load: Load, pid: int) -> Measurement:
    """`load` against the server whose process is `pid`."""
    before = procstat.sample(pid)
    result = generate(load)
    after = procstat.sample(pid)
    finished = result["total_requests"]
    cpu_ms = (after.cpu_seconds - before.cpu_seconds) * 1000
    return Measurement(
        load=result,
        cpu_ms_per_request=cpu_ms / finished if finished else None,
        peak_rss_mb=after.peak_rss_mb,
        rss_mb=after.rss_mb,
    )
