"""Real `bytespike` processes for end-to-end tests: the console script, free ports, and
servers that are up (answering /healthz) before a test talks to them and gone after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

BYTESPIKE = str(Path(sys.executable).with_name("bytespike"))
READY_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any BYTESPIKE_* of the developer's, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    return {**env, **settings}


@contextmanager
def serving(
    env: dict[str, str], logs: Path, count: int = 1, *, workers: int = 1
) -> Iterator[list[str]]:
    """Start `count` `bytespike serve` processes (cwd `logs`), each with `workers` worker
    processes; yield their base URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for i in range(count):
            port = free_port()
            args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
            with (logs / f"serve-{i}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [BYTESPIKE, *args],
                        env=env,
                        cwd=logs,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls, strict=True):
            _wait_until_ready(proc, url, logs)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_ready(proc: subprocess.Popen[bytes], url: str, logs: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = "\n".join(p.read_text() for p in logs.glob("serve-*.log"))
            pytest.fail(f"bytespike serve exited with {proc.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"bytespike serve at {url} was not ready within {READY_SECONDS}s")
