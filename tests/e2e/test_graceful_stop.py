"""SIGTERM to a real `bytespike serve` (one process, and two workers) with a stream in flight
through a slow upstream, on SQLite and PostgreSQL: the port stops accepting at once; a
stream that ends within the grace period reaches its client whole and is billed exactly;
one still running at its end is cut, settles as `client_closed` and closes the upstream
call; nothing is left held, the process exits 0 and `ledger verify` is clean.

And `bytespike worker`: SIGTERM during a webhook delivery lets it finish and records it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

from bytespike.billing import pricing
from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.upstream.base import Usage
from bytespike.usage.tables import usage_records
from bytespike.webhooks import service as webhooks
from bytespike.webhooks.tables import webhook_deliveries
from tests.e2e.serve_process import (
    MODEL,
    assert_books_closed,
    gateway_env,
    gateway_process,
    said,
)
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes import openai as openai_fake
from tests.fakes.base import FakeUpstream, Script
from tests.integration.webhooks_support import receiving
from tests.processes import BYTESPIKE, READY_SECONDS, clean_env

TEXT = "One two three four five six seven eight nine ten eleven twelve."
STOP_SECONDS = 60  # a deadline for the process to exit, far past the grace periods used


async def refused(url: str) -> None:
    """Poll until a new connection to the server is refused (its port stopped accepting)."""
    deadline = time.monotonic() + STOP_SECONDS
    async with httpx.AsyncClient(timeout=1) as http:
        while time.monotonic() < deadline:
            try:
                await http.get(f"{url}/healthz", headers={"Connection": "close"})
            except httpx.ConnectError:
                return
            except (httpx.TimeoutException, httpx.ReadError, httpx.RemoteProtocolError):
                # Not served, not yet refused: with workers, a connection the kernel queued
                # while the last copy of the listening socket closed is reset, not answered.
                pass
            await asyncio.sleep(0.05)
    pytest.fail("the server still accepted connections after SIGTERM")


async def exit_code(proc: asyncio.subprocess.Process) -> int:
    return await asyncio.wait_for(proc.wait(), STOP_SECONDS)


async def funded_key(ctx: Context) -> tuple[str, int]:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    return (await make_key(ctx, "ada"))["key"], await wallet_of(ctx, user="ada")


def slow_stream(resume: asyncio.Event | None) -> Script:
    """Two of six pieces, then a pause until `resume` is set (for good, without one)."""
    return Script(text=TEXT, chunks=6, stall_after_chunks=2, resume=resume)


@asynccontextmanager
async def sdk(base: str, key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The OpenAI SDK's client, closed on this loop (left to the garbage collector, its
    connection pool would be closed on a loop that has ended: an error in a later test)."""
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as client:
        yield client


async def open_stream(client: openai.AsyncOpenAI) -> tuple[Any, str]:
    """A streamed chat call through the OpenAI SDK, read until the upstream pauses."""
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count."}], stream=True
    )
    text = ""
    paused_at = "".join(FakeUpstream(script=slow_stream(None)).split()[:2])
    async for chunk in stream:
        text += "".join(c.delta.content or "" for c in chunk.choices)
        if text == paused_at:
            return stream, text
    pytest.fail(f"the stream ended before the upstream paused: {text!r}")


async def usage_rows(ctx: Context) -> list[Any]:
    u = usage_records.c
    async with ctx.db.read() as conn:
        query = sa.select(u.status, u.stream, u.cost_micros, u.input_tokens, u.output_tokens)
        return list((await conn.execute(query.order_by(u.id))).all())


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_stream_in_flight_at_sigterm_ends_whole_within_the_grace_period(
    ctx: Context, db_url: str, tmp_path: Path, workers: str
) -> None:
    key, wallet = await funded_key(ctx)
    resume = asyncio.Event()
    async with openai_fake.running() as fake:
        fake.script = slow_stream(resume)
        env = gateway_env(db_url, fake, BYTESPIKE_GRACE_SECONDS="30")
        async with (
            gateway_process(env, tmp_path, "--workers", workers) as (proc, base),
            sdk(base, key) as client,
        ):
            stream, text = await open_stream(client)
            proc.send_signal(signal.SIGTERM)
            await refused(base)  # stopped accepting, while the stream runs on
            resume.set()
            async for chunk in stream:
                text += "".join(c.delta.content or "" for c in chunk.choices)
            assert await exit_code(proc) == 0, said(tmp_path / "serve.log")

    assert text == TEXT
    entry = ctx.catalog.get(MODEL)
    assert entry is not None
    script = fake.script
    owed = pricing.charge(entry, Usage(script.input_tokens, script.output_tokens))
    assert await usage_rows(ctx) == [("ok", True, owed, script.input_tokens, script.output_tokens)]
    assert await assert_books_closed(ctx, env, wallet) == owed


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_stream_still_running_past_the_grace_period_is_cut_and_settled(
    ctx: Context, db_url: str, tmp_path: Path, workers: str
) -> None:
    key, wallet = await funded_key(ctx)
    async with openai_fake.running() as fake:
        fake.script = slow_stream(None)  # the upstream never finishes
        env = gateway_env(db_url, fake)
        args = ("--workers", workers, "--grace", "1")
        async with gateway_process(env, tmp_path, *args) as (proc, base), sdk(base, key) as client:
            stream, text = await open_stream(client)
            proc.send_signal(signal.SIGTERM)
            with pytest.raises((httpx.HTTPError, openai.APIError)):
                async for chunk in stream:
                    text += "".join(c.delta.content or "" for c in chunk.choices)
            assert await exit_code(proc) == 0, said(tmp_path / "serve.log")
            # The gateway hung up on the upstream too (it stops generating).
            await asyncio.wait_for(fake.disconnected.wait(), STOP_SECONDS)

    assert text == "".join(fake.split()[:2])  # what was streamed before the cut
    [(status, stream_flag, cost, _, output_tokens)] = await usage_rows(ctx)
    assert (status, stream_flag) == ("client_closed", True)
    assert cost > 0 and output_tokens > 0  # billed for the prompt and what was streamed
    assert await assert_books_closed(ctx, env, wallet) == cost


async def test_a_worker_stopped_mid_delivery_finishes_it_and_exits_0(
    ctx: Context, db_url: str, tmp_path: Path
) -> None:
    """The delivery under way at SIGTERM reaches its receiver, is recorded as delivered
    (not left leased, to be sent again), and the worker exits 0."""
    await make_user(ctx, "ada")
    minted = await make_key(ctx, "ada")
    async with receiving() as receiver:
        receiver.stall = True
        ctx.settings.webhook_allow_private = True
        created = await webhooks.create(
            ctx,
            await keys.resolve(ctx, minted["key"]),
            url=f"{receiver.url}/hook",
            event_types=["balance.topped_up"],
            description=None,
        )
        receiver.secrets["/hook"] = created["secret"]
        await top_up(ctx, "1", user="ada")
        env = clean_env(
            BYTESPIKE_DATABASE_URL=db_url,
            BYTESPIKE_SECRET_KEY="test-secret-key",
            BYTESPIKE_WEBHOOK_ALLOW_PRIVATE="1",
            BYTESPIKE_WEBHOOK_POLL_SECONDS="0.1",
        )
        worker = await asyncio.create_subprocess_exec(
            BYTESPIKE, "worker", env=env, cwd=tmp_path, stderr=subprocess.PIPE
        )
        try:
            await asyncio.wait_for(receiver.arrived.wait(), READY_SECONDS)
            worker.send_signal(signal.SIGTERM)
            said = await asyncio.wait_for(_line_saying(worker, "stopping"), STOP_SECONDS)
            receiver.unblock.set()  # the delivery ends only after the worker began to stop
            _, err = await asyncio.wait_for(worker.communicate(), STOP_SECONDS)
            err = said + err
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert worker.returncode == 0, err.decode()
    assert len(receiver.received) == 1 and receiver.received[0].verified
    async with ctx.db.read() as conn:
        rows = (await conn.execute(sa.select(webhook_deliveries.c.status))).scalars().all()
    assert rows == ["succeeded"]


async def _line_saying(proc: asyncio.subprocess.Process, words: str) -> bytes:
    """The process's stderr up to the first line containing `words`."""
    assert proc.stderr is not None
    read = b""
    while words.encode() not in read:
        line = await proc.stderr.readline()
        assert line, f"the process exited without saying {words!r}: {read.decode()}"
        read += line
    return read
