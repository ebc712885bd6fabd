"""Operational surface: health checks and Redis namespacing between deployments."""

import uuid

import httpx

from bytespike.app import build_limiter, create_app
from bytespike.catalog import load
from bytespike.clock import SystemClock
from bytespike.context import Context
from bytespike.db.engine import Database
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.settings import Settings
from tests.services import REDIS_URL, require


async def test_healthz_is_503_in_the_envelope_when_the_database_is_down():
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    ctx = Context(settings, Database(settings.database_url), load(), SystemClock())
    app = create_app(settings, ctx=ctx, limiter=MemoryRateLimiter(), background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/healthz")
    await ctx.db.close()
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"
    assert "database unavailable" in response.json()["error"]["message"]


async def test_deployments_with_different_redis_prefixes_do_not_share_limits():
    require(REDIS_URL, 6379, "Redis")
    run = uuid.uuid4().hex
    first = build_limiter(Settings(redis_url=REDIS_URL, redis_prefix=f"a-{run}"))
    second = build_limiter(Settings(redis_url=REDIS_URL, redis_prefix=f"b-{run}"))
    try:
        assert (await first.hit("key:1", 1)).allowed
        assert not (await first.hit("key:1", 1)).allowed
        assert (await second.hit("key:1", 1)).allowed  # same key id, other deployment
    finally:
        await first.close()
        await second.close()
