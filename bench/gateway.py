"""Setting bytespike up for a benchmark through its own CLI: a catalog (the shipped one, its
`openai` models pointed at the fake upstream through OPENAI_BASE_URL, plus the bench's own
`openai-compatible` model on the fake), a migrated database, a user with plenty of credit
and a key whose rate limit never binds; then the checks around the load: a first call must
succeed, and the account must show the spend afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databases import BenchDatabase, fresh_database
from revisions import INSTALLED, Code
from servers import READY_SECONDS, BenchError, Service, call, free_port, running

MODEL = "bench-model"
# A shipped catalog model on the `openai` provider's path (upstream/openai_responses.py),
# served by the fake: what a deployment of the shipped catalog runs.
SHIPPED_MODEL = "gpt-5-4"
UPSTREAM_KEY_ENV = "BENCH_UPSTREAM_API_KEY"
UPSTREAM_KEY = "bench-upstream-key"
TOPUP_USD = "1000000"
RATE_LIMIT_PER_MINUTE = 1_000_000


def shipped_openai_models(shipped: Path) -> set[str]:
    """The ids of the shipped catalog's `openai` chat models: those the fake can answer."""
    entries = tomllib.loads(shipped.read_text(encoding="utf-8")).get("models", [])
    return {
        str(e["id"])
        for e in entries
        if e.get("provider") == "openai" and e.get("kind", "chat") == "chat"
    }


def write_catalog(directory: Path, upstream_url: str, shipped: Path) -> Path:
    """The `shipped` catalog as it is, and the bench model after it."""
    path = directory / "catalog.toml"
    path.write_text(
        shipped.read_text(encoding="utf-8").rstrip("\n")
        + f"""

[[models]]
id = "{MODEL}"
provider = "openai-compatible"
upstream_model = "{MODEL}"
base_url = "{upstream_url}/v1"
api_key_env = "{UPSTREAM_KEY_ENV}"
input_usd_per_mtok = "3.00"
output_usd_per_mtok = "15.00"
context_tokens = 128000
max_output_tokens = 4096
""",
        encoding="utf-8",
    )
    return path


def environment(database_url: str, catalog: Path, port: int, upstream_url: str) -> dict[str, str]:
    """This process's environment without the developer's BYTESPIKE_*, plus the bench's: the
    `openai` provider's base URL and key are the fake's (as a deployment sets them for
    OpenAI), so no call leaves the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    return {
        **env,
        "BYTESPIKE_DATABASE_URL": database_url,
        "BYTESPIKE_CATALOG": str(catalog),
        "BYTESPIKE_PORT": str(port),
        "BYTESPIKE_SECRET_KEY": secrets.token_urlsafe(32),
        "BYTESPIKE_LOG_LEVEL": "WARNING",
        UPSTREAM_KEY_ENV: UPSTREAM_KEY,
        "OPENAI_BASE_URL": f"{upstream_url}/v1",
        "OPENAI_API_KEY": UPSTREAM_KEY,
    }


def cli(env: dict[str, str], *args: str, code: Code = INSTALLED) -> str:
    """Run one `bytespike` command of `code`; its standard output."""
    # A fixed program; the arguments are the benchmark's own.
    done = subprocess.run(  # noqa: S603
        code.argv(*args), env=code.env(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        side = f" ({code.side})" if code.src else ""
        raise BenchError(f"`bytespike {' '.join(args)}`{side} failed:\n{done.stderr}{done.stdout}")
    code.confirm(f"`bytespike {' '.join(args)}`", done.stderr)
    return done.stdout


def cli_json(env: dict[str, str], *args: str, code: Code = INSTALLED) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cli(env, *args, "--json", code=code))
    return result


def provision(env: dict[str, str], code: Code = INSTALLED) -> str:
    """Migrate, create the bench user, fund it, and return a fresh API key; all with `code`."""
    cli(env, "db", "upgrade", code=code)
    cli_json(
        env, "users", "create", "--username", "bench", "--email", "bench@example.com", code=code
    )
    cli_json(
        env, "credits", "topup", "--user", "bench", "--usd", TOPUP_USD, "--reference", "bench",
        code=code,
    )  # fmt: skip
    key = cli_json(
        env, "keys", "create", "--user", "bench", "--name", "bench",
        "--rate-limit", str(RATE_LIMIT_PER_MINUTE), code=code,
    )  # fmt: skip
    return str(key["key"])


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def check_call(url: str, headers: dict[str, str], body: dict[str, Any]) -> None:
    """One call before the load: a gateway that errors fails here with its answer shown."""
    reply = call(
        "POST",
        f"{url}/v1/chat/completions",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **headers},
    )
    if reply.status != 200 or b'"usage"' not in reply.body:
        mode = "streaming" if body.get("stream") else "non-streaming"
        raise BenchError(
            f"{mode} call to {url}/v1/chat/completions answered {reply.status}:\n{reply.text()}"
        )


def account(url: str, key: str) -> dict[str, Any]:
    reply = call("GET", f"{url}/api/v1/me/account", headers=auth(key))
    if reply.status != 200:
        raise BenchError(f"GET /api/v1/me/account answered {reply.status}:\n{reply.text()}")
    result: dict[str, Any] = json.loads(reply.body)
    return result


@dataclass(frozen=True, slots=True)
class Served:
    """A side's gateway, up: its process, the key provisioned for it, its database."""

    service: Service
    key: str
    db: BenchDatabase
    port: int
    log: Path


@contextmanager
def served(
    code: Code,
    database: str,
    directory: Path,
    postgres: str,
    upstream_url: str,
    *,
    suffix: str = "",
    title: str = "bytespike serve",
    wrapper: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
    ready_seconds: float = READY_SECONDS,
) -> Iterator[Served]:
    """A fresh database provisioned by `code`'s CLI, and `code`'s `serve` on it (behind
    `wrapper`, such as valgrind, with `options` after its own) while the block runs."""
    directory.mkdir(parents=True)
    with fresh_database(database, directory, postgres, suffix) as db:
        port = free_port()
        catalog = write_catalog(directory, upstream_url, code.shipped_catalog)
        env = code.env(environment(db.url, catalog, port, upstream_url))
        key = provision(env, code)
        argv = [*wrapper, *code.argv("serve", "--host", "127.0.0.1", "--port", str(port), *options)]
        log = directory / "serve.log"
        url = f"http://127.0.0.1:{port}"
        with running(title, argv, url, log, env, ready_seconds) as service:
            yield Served(service, key, db, port, log)
