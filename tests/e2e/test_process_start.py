"""The long-running commands refuse a configuration they cannot run safely, and say why."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BYTESPIKE = Path(sys.executable).with_name("bytespike")


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker", "--once"]])
def test_postgresql_without_a_secret_key_exits_with_the_reason(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    env["BYTESPIKE_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/test"
    done = subprocess.run(
        [str(BYTESPIKE), *command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "BYTESPIKE_SECRET_KEY must be set on PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_starts_from_nothing_on_the_embedded_default(tmp_path):
    """The README's run command on a fresh machine: no database, no folder, no settings."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    server = subprocess.Popen(
        [str(BYTESPIKE), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
        assert health.status_code == 200
        assert (tmp_path / "data" / "bytespike.db").is_file()
        assert (tmp_path / "data" / "bytespike.db.key").is_file()
    finally:
        server.terminate()
        server.communicate(timeout=10)
