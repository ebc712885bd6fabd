"""Child processes the benchmark depends on (the fake upstream, `bytespike serve`): started
with their output in a log file, waited for until `/healthz` answers (and every worker is
up), stopped at the end.
Also the one blocking HTTP call the orchestrator needs outside the load generator.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import procstat

READY_SECONDS = 30.0
STOP_SECONDS = 10.0


class BenchError(RuntimeError):
    """Something the benchmark depends on failed; the message says what and shows why."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes

    def text(self, limit: int = 1000) -> str:
        return self.body[:limit].decode(errors="replace")


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.read())
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    pid: int
    url: str  # base URL, no trailing slash


@contextmanager
def running(
    name: str,
    argv: list[str],
    url: str,
    log: Path,
    env: dict[str, str] | None = None,
    ready_seconds: float = READY_SECONDS,
) -> Iterator[Service]:
    """Run `argv` until the block ends; yield once `url`/healthz answers 200, within
    `ready_seconds`."""
    with log.open("wb") as out:
        # The argv is built by the benchmark itself from fixed programs and its own values.
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_until_ready(name, proc, url, log, ready_seconds)
        yield Service(name=name, pid=proc.pid, url=url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_workers(name: str, pid: int, workers: int) -> None:
    """`serve --workers N` answers /healthz as soon as one worker is up: wait until all N
    have started and gone quiet (the tree's CPU time still for half a second), so no
    worker's start-up falls into a measured row."""
    deadline = time.monotonic() + READY_SECONDS
    last = None
    while time.monotonic() < deadline:
        now = procstat.sample(pid)
        if now.processes > workers and last is not None and now.cpu_seconds - last < 0.02:
            return
        last = now.cpu_seconds
        time.sleep(0.5)
    raise BenchError(f"{name}: its {workers} workers were not all up within {READY_SECONDS:.0f}s")


def _wait_until_ready(
    name: str, proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if call("GET", f"{url}/healthz").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{name} did not answer {url}/healthz within {seconds:.0f}s")


@contextmanager
def fake_upstream(workdir: Path) -> Iterator[Service]:
    """bench/fake_upstream.py on a free port until the block ends (its log in `workdir`)."""
    port = free_port()
    argv = [sys.executable, str(Path(__file__).with_name("fake_upstream.py")), "--port", str(port)]
    with running("fake upstream", argv, f"http://127.0.0.1:{port}", workdir / "upstream.log") as up:
        yield up
