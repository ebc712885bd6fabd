"""One suite over every rate limiter backend: in-memory, the workers' shared file and Redis
behave the same, and Redis is shared by every replica, counts exactly under concurrency and
fails open when down (the shared file's own cases: test_ratelimit_shared.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bytespike.app import create_app
from bytespike.ratelimit.base import RateLimiter
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.ratelimit.redis import RedisRateLimiter
from bytespike.ratelimit.shared import SharedRateLimiter
from tests.factories import make_key, make_user, top_up
from tests.processes import free_port
from tests.services import REDIS_URL, require

START = 29_000_000 * 60.0  # the first second of a minute


class Now:
    """The limiter's time seam: a wall clock tests move by hand."""

    def __init__(self, at: float = START) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


MakeLimiter = Callable[..., RateLimiter]


@pytest.fixture
def redis_prefix() -> str:
    return f"bytespike-test:{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", "shared", "redis"])
async def make_limiter(
    request: pytest.FixtureRequest, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[MakeLimiter]:
    """Builds limiters of one backend; Redis ones share a prefix, as replicas would, and
    shared ones a file, as workers would."""
    made: list[RateLimiter] = []
    if request.param == "redis":
        require(REDIS_URL, 6379, "Redis")

    def make(now: Callable[[], float] = time.time) -> RateLimiter:
        limiter: RateLimiter
        if request.param == "memory":
            limiter = MemoryRateLimiter(now=now)
        elif request.param == "shared":
            limiter = SharedRateLimiter(tmp_path / "ratelimit", now=now)
        else:
            limiter = RedisRateLimiter(REDIS_URL, prefix=redis_prefix, now=now)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


@pytest.fixture
async def redis_limiter(redis_prefix: str) -> AsyncIterator[Callable[..., RedisRateLimiter]]:
    require(REDIS_URL, 6379, "Redis")
    made: list[RedisRateLimiter] = []

    def make(now: Callable[[], float] = time.time) -> RedisRateLimiter:
        made.append(RedisRateLimiter(REDIS_URL, prefix=redis_prefix, now=now))
        return made[-1]

    yield make
    for limiter in made:
        await limiter.close()


async def test_a_limit_of_n_allows_n_then_refuses(make_limiter):
    limiter = make_limiter(Now(START + 15))
    allowed = [await limiter.hit("key:1", 3) for _ in range(3)]
    assert [d.allowed for d in allowed] == [True, True, True]
    assert [d.remaining for d in allowed] == [2, 1, 0]
    refused = await limiter.hit("key:1", 3)
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.reset_seconds == 45
    assert refused.headers()["Retry-After"] == "45"
    assert "Retry-After" not in allowed[-1].headers()


async def test_a_new_window_starts_the_count_again(make_limiter):
    now = Now(START + 59)
    limiter = make_limiter(now)
    for _ in range(2):
        await limiter.hit("key:1", 2)
    assert not (await limiter.hit("key:1", 2)).allowed
    now.at = START + 60
    fresh = await limiter.hit("key:1", 2)
    assert (fresh.allowed, fresh.remaining, fresh.reset_seconds) == (True, 1, 60)


async def test_subjects_are_counted_separately(make_limiter):
    limiter = make_limiter(Now())
    assert (await limiter.hit("key:1", 1)).allowed
    assert not (await limiter.hit("key:1", 1)).allowed
    other = await limiter.hit("key:2", 1)
    assert (other.allowed, other.remaining) == (True, 0)


async def test_the_headers_a_client_sees(make_limiter):
    limiter = make_limiter(Now(START + 20))
    assert (await limiter.hit("key:1", 600)).headers() == {
        "RateLimit-Policy": '"requests";q=600;w=60',
        "RateLimit": '"requests";r=599;t=40',
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "599",
        "x-ratelimit-reset-requests": "40s",
    }


async def test_concurrent_hits_are_counted_exactly(make_limiter):
    limiter = make_limiter(Now())
    decisions = await asyncio.gather(*(limiter.hit("key:1", 150) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 150
    allowed_remaining = sorted(d.remaining for d in decisions if d.allowed)
    assert allowed_remaining == list(range(150))  # every hit got its own count
    assert (await limiter.hit("key:1", 1000)).remaining == 1000 - 201


async def test_replicas_sharing_redis_share_the_count(redis_limiter):
    now = Now(START + 10)
    replica_a, replica_b = redis_limiter(now), redis_limiter(now)
    assert (await replica_a.hit("key:7", 4)).remaining == 3
    assert (await replica_b.hit("key:7", 4)).remaining == 2
    assert (await replica_a.hit("key:7", 4)).remaining == 1
    assert (await replica_b.hit("key:7", 4)).remaining == 0
    assert not (await replica_a.hit("key:7", 4)).allowed
    assert not (await replica_b.hit("key:7", 4)).allowed


async def test_redis_windows_expire_on_their_own(redis_limiter, redis_prefix):
    await redis_limiter(Now(START)).hit("key:1", 5)
    client = Redis.from_url(REDIS_URL)
    try:
        keys = await client.keys(f"{redis_prefix}:*")
        assert keys == [f"{redis_prefix}:key:1:{int(START) // 60}".encode()]
        assert 0 < await client.ttl(keys[0]) <= 61
    finally:
        await client.aclose()


async def test_redis_down_fails_open_quickly():
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", now=Now(START + 30))
    try:
        started = time.perf_counter()
        decisions = [await limiter.hit("key:1", 2) for _ in range(5)]
        assert time.perf_counter() - started < 2
    finally:
        await limiter.close()
    assert all(d.allowed for d in decisions)
    assert {d.remaining for d in decisions} == {2}
    assert "Retry-After" not in decisions[-1].headers()


async def test_the_account_endpoint_returns_429_after_the_limit(ctx, make_limiter):
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, rate_limit=3)
    app = create_app(ctx.settings, ctx=ctx, limiter=make_limiter(), background=False)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key['key']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bytespike.test") as client:
        responses = [await client.get("/api/v1/me/account", headers=headers) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in responses] == ["2", "1", "0", "0"]
    refused = responses[-1]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == '"requests";q=3;w=60'
