"""The long-running commands refuse a configuration they cannot run safely, and say why."""

import subprocess

import httpx
import pytest

from tests.processes import BYTESPIKE, clean_env, serving


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker", "--once"]])
def test_postgresql_without_a_secret_key_exits_with_the_reason(command, tmp_path):
    env = clean_env(BYTESPIKE_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/test")
    done = subprocess.run(
        [BYTESPIKE, *command],
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
    with serving(clean_env(), tmp_path) as (base,):
        assert httpx.get(f"{base}/healthz").status_code == 200
    assert (tmp_path / "data" / "bytespike.db").is_file()
    assert (tmp_path / "data" / "bytespike.db.key").is_file()
