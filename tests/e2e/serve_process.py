"""A real `bytespike serve` process for end-to-end tests: its environment, pointed at a fake
OpenAI upstream; the process started without blocking the test's event loop (the fake runs
on it); and, afterwards, the books checked closed."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from bytespike.billing.tables import holds
from bytespike.context import Context
from tests.e2e.gateway_support import books_balance
from tests.fakes.base import FakeUpstream
from tests.processes import BYTESPIKE, READY_SECONDS, clean_env, free_port

MODEL = "gpt-5-4"  # a catalog `openai` model: the fake upstream serves it


@asynccontextmanager
async def gateway_process(
    env: dict[str, str], logs: Path, *args: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`bytespike serve *args` on a free port, started without blocking this loop (the fake
    upstream runs on it); yields the process, once every worker is up, and its URL."""
    port = free_port()
    with (logs / "serve.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *(BYTESPIKE, "serve", "--host", "127.0.0.1", "--port", str(port), *args),
            env=env,
            cwd=logs,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        await _started(proc, logs / "serve.log", workers)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _started(proc: asyncio.subprocess.Process, log: Path, workers: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while said(log).count("Application startup complete.") < workers:
        if proc.returncode is not None or time.monotonic() > deadline:
            pytest.fail(f"bytespike serve did not start:\n{said(log)}")
        await asyncio.sleep(0.1)


def said(log: Path) -> str:
    return log.read_text()


def gateway_env(db_url: str, fake: FakeUpstream, **settings: str) -> dict[str, str]:
    return clean_env(
        BYTESPIKE_DATABASE_URL=db_url,
        BYTESPIKE_SECRET_KEY="test-secret-key",
        BYTESPIKE_LOG_LEVEL="INFO",
        OPENAI_BASE_URL=fake.url,
        OPENAI_API_KEY="sk-upstream-openai",
        **settings,
    )


async def assert_books_closed(ctx: Context, env: dict[str, str], wallet: int) -> int:
    """No hold left pending, the wallet's books consistent, `ledger verify` clean; the
    amount spent."""
    async with ctx.db.read() as conn:
        pending = sa.select(sa.func.count()).where(holds.c.status == "pending")
        assert (await conn.execute(pending)).scalar_one() == 0
    balances = await books_balance(ctx, wallet)
    assert balances.held == 0
    verify = await asyncio.create_subprocess_exec(
        BYTESPIKE, "ledger", "verify", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await verify.communicate()
    assert verify.returncode == 0, (out + err).decode()
    return balances.spent
