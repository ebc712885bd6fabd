"""Fixtures the gateway tests share: the fake upstreams, a served gateway, a funded key.
A test module that needs them otherwise (a script, a limiter) defines its own."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from bytespike.context import Context
from bytespike.logs import JsonFormatter
from tests.e2e.gateway_support import Upstreams, gateway, upstreams
from tests.factories import make_key, make_user, top_up, wallet_of


@pytest.fixture
async def fakes() -> AsyncIterator[Upstreams]:
    async with upstreams() as running:
        yield running


@pytest.fixture
async def base_url(ctx: Context, fakes: Upstreams) -> AsyncIterator[str]:
    async with gateway(ctx, fakes) as url:
        yield url


@pytest.fixture
async def account(ctx: Context) -> tuple[str, int]:
    """Ada, $10 in her wallet, and a key for the whole catalog: (key, wallet id)."""
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada")
    return key["key"], await wallet_of(ctx, user="ada")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the server logs, formatted as it is in production (as it is emitted)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
