"""Commands refuse a configuration they cannot run safely, and say why in one line: the
long-running ones (serve, worker) before anything listens, and the admin commands too."""

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bytespike.db.engine import async_url
from tests.processes import BYTESPIKE, clean_env, free_port, serving
from tests.services import own_postgres_database


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


# --- configuration mistakes: one `error:` line, exit code 1, for every kind of command ------

COMMANDS = {
    "cli": ["users", "create", "--username", "ada", "--email", "ada@dosia.ai"],
    "serve": ["serve", "--host", "127.0.0.1"],  # the port is a free one, given per test
    "worker": ["worker", "--once"],
}
BAD_TOML = "[[models]\nid = 'x'\n"
BAD_PRICE = """\
[[models]]
id = "cheap"
provider = "mock"
input_usd_per_mtok = "cheap"
output_usd_per_mtok = "1.00"
"""


def run_bytespike(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    args = COMMANDS[command] + (["--port", str(free_port())] if command == "serve" else [])
    return subprocess.run(
        [BYTESPIKE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert (done.returncode, done.stdout) == (1, ""), (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("setting", "value", "fragments"),
    [
        ("BYTESPIKE_LOG_LEVEL", "bogus", ["BYTESPIKE_LOG_LEVEL", "DEBUG, INFO", "'bogus'"]),
        ("BYTESPIKE_DATABASE_URL", "mysql://ops:s3cret@db/bytespike", ["sqlite:///PATH"]),
        ("BYTESPIKE_CATALOG", BAD_TOML, ["cannot read catalog", "bad.toml"]),
        ("BYTESPIKE_CATALOG", BAD_PRICE, ["'cheap'", "input_usd_per_mtok"]),
    ],
    ids=["log-level", "mysql", "catalog-toml", "catalog-price"],
)
def test_a_configuration_mistake_is_one_error_line(command, setting, value, fragments, tmp_path):
    if setting == "BYTESPIKE_CATALOG":
        (tmp_path / "bad.toml").write_text(value)
        value = str(tmp_path / "bad.toml")
    defaults = {
        "BYTESPIKE_DATABASE_URL": f"sqlite:///{tmp_path / 'bytespike.db'}",
        "BYTESPIKE_SECRET_KEY": "test-secret-key",
    }
    env = clean_env(**{**defaults, setting: value})

    done = run_bytespike(command, env, tmp_path)

    assert_one_line_error(done, *fragments)
    assert "s3cret" not in done.stderr  # a database URL may carry a password: never echoed


def test_log_level_is_case_insensitive(tmp_path):
    env = clean_env(
        BYTESPIKE_DATABASE_URL=f"sqlite:///{tmp_path / 'bytespike.db'}", BYTESPIKE_LOG_LEVEL="debug"
    )

    done = run_bytespike("cli", env, tmp_path)

    assert done.returncode == 0, done.stderr


@pytest.fixture
def unmigrated_postgres() -> Iterator[str]:
    """A database of our own on the PostgreSQL server that `db upgrade` never touched."""
    with own_postgres_database("bytespike_unmigrated") as url:
        yield url


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unmigrated_postgresql_database_says_to_run_db_upgrade(
    command, unmigrated_postgres, tmp_path
):
    env = clean_env(
        BYTESPIKE_DATABASE_URL=unmigrated_postgres, BYTESPIKE_SECRET_KEY="test-secret-key"
    )

    refused = run_bytespike(command, env, tmp_path)
    upgraded = subprocess.run(
        [BYTESPIKE, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    after = run_bytespike("cli", env, tmp_path)

    assert_one_line_error(refused, "never migrated", "run `bytespike db upgrade`")
    assert upgraded.returncode == 0, upgraded.stderr
    assert after.returncode == 0, after.stderr  # the advice works


def test_a_database_a_newer_version_migrated_says_to_run_that_version(
    unmigrated_postgres, tmp_path
):
    """An old replica restarted in the middle of a rolling upgrade (docs/deploy.md): not
    `db upgrade`, which cannot go back, but the version that migrated it."""
    env = clean_env(
        BYTESPIKE_DATABASE_URL=unmigrated_postgres, BYTESPIKE_SECRET_KEY="test-secret-key"
    )
    upgraded = subprocess.run(
        [BYTESPIKE, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert upgraded.returncode == 0, upgraded.stderr
    asyncio.run(_execute(unmigrated_postgres, "UPDATE alembic_version SET version_num = '9999'"))

    refused = run_bytespike("serve", env, tmp_path)

    assert_one_line_error(refused, "at 9999", "a newer version migrated it; run that one")


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.execute(sa.text(statement))
    await engine.dispose()


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_database_is_one_error_line(command, tmp_path):
    port = free_port()  # nothing listens there
    env = clean_env(
        BYTESPIKE_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/bytespike",
        BYTESPIKE_SECRET_KEY="test-secret-key",
    )

    done = run_bytespike(command, env, tmp_path)

    assert_one_line_error(done, "cannot reach the database", "BYTESPIKE_DATABASE_URL")


def test_processes_started_together_on_nothing_migrate_it_once(tmp_path):
    """Each process migrates the embedded default it finds behind (the deployment guide
    starts `serve` and `worker` at once): several at once take turns, none fails half-way
    through a migration another is running."""
    env = clean_env()
    workers = [
        subprocess.Popen(
            [BYTESPIKE, "worker", "--once"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    try:
        with serving(env, tmp_path) as (url,):
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        outputs = [worker.communicate(timeout=60)[0].decode() for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output
