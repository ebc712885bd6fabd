"""The long-running commands refuse a configuration they cannot run safely, and say why."""

import os
import subprocess
import sys
from pathlib import Path

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
