"""A real gateway for SDK tests: the app served by uvicorn in the test's event loop (real
HTTP, so streaming and client disconnects behave as in production), its providers pointed
at the local fake upstreams by the official SDKs' env vars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from bytespike.app import create_app
from bytespike.billing import ledger
from bytespike.context import Context
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.upstream.registry import Providers
from tests.fakes import anthropic as anthropic_fake
from tests.fakes import gemini as gemini_fake
from tests.fakes import openai as openai_fake
from tests.fakes.base import FakeUpstream
from tests.processes import free_port


@dataclass
class Upstreams:
    openai: FakeUpstream
    anthropic: FakeUpstream
    gemini: FakeUpstream

    def env(self) -> dict[str, str]:
        return {
            "OPENAI_BASE_URL": self.openai.url,
            "OPENAI_API_KEY": "sk-upstream-openai",
            "ANTHROPIC_BASE_URL": self.anthropic.url,
            "ANTHROPIC_API_KEY": "sk-upstream-anthropic",
            "GEMINI_BASE_URL": self.gemini.url,
            "GEMINI_API_KEY": "upstream-gemini",
        }

    def all(self) -> list[FakeUpstream]:
        return [self.openai, self.anthropic, self.gemini]


@asynccontextmanager
async def upstreams() -> AsyncIterator[Upstreams]:
    async with (
        openai_fake.running() as openai,
        anthropic_fake.running() as anthropic,
        gemini_fake.running() as gemini,
    ):
        yield Upstreams(openai=openai, anthropic=anthropic, gemini=gemini)


@asynccontextmanager
async def gateway(
    ctx: Context,
    fakes: Upstreams,
    limiter: MemoryRateLimiter | None = None,
    *,
    providers: Providers | None = None,
) -> AsyncIterator[str]:
    """Serve the app on a free port; yields its base URL (http://127.0.0.1:PORT)."""
    providers = providers or Providers(ctx.catalog, ctx.settings, env=fakes.env())
    app = create_app(
        ctx.settings,
        ctx=ctx,
        limiter=limiter or MemoryRateLimiter(),
        background=False,
        providers=providers,
    )
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def books_balance(ctx: Context, wallet_id: int) -> ledger.Balances:
    """The wallet's balances, after checking the ledger agrees with itself."""
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet_id) == []
        return await ledger.balances(conn, wallet_id)


def micros(usd: Any) -> int:
    from bytespike.money import parse_usd

    return parse_usd(usd)


def expected_cost(
    ctx: Context, model: str, input_tokens: int, output_tokens: int, *, cached: int = 0
) -> int:
    """What the spec says a call costs: tokens times prices per million (`cached` of the input
    tokens at the cache-read price), in the prices in force now, rounded up to a micro."""
    entry = ctx.catalog.get(model)
    assert entry is not None
    rates = entry.prices.at(ctx.clock.now()).tier(input_tokens).rates
    exact = (
        (input_tokens - cached) * rates.input
        + cached * rates.cache_read
        + output_tokens * rates.output
    )
    return int(exact.to_integral_value(rounding="ROUND_CEILING"))
