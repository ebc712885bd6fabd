"""Redis rate limiter: one atomic script call per request, shared by every replica.

Failure policy: fail open. If Redis is unreachable the request is allowed and a warning
logged; rate limiting protects capacity, while money is protected by holds, which fail
closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from bytespike.ratelimit.base import WINDOW_SECONDS, Decision, decide, window_of

log = logging.getLogger(__name__)

# A burst larger than the pool waits briefly for a connection: a plain pool would refuse
# the excess outright (MaxConnectionsError), failing open exactly when traffic peaks.
MAX_CONNECTIONS = 64
TIMEOUT_SECONDS = 1.0

# INCR and set the expiry on the window's first hit, atomically.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisRateLimiter:
    def __init__(
        self, url: str, *, prefix: str = "bytespike:rl", now: Callable[[], float] = time.time
    ) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        self._redis = Redis.from_pool(pool)
        self._script = self._redis.register_script(_HIT)
        self._prefix = prefix
        self._now = now

    async def hit(self, subject: str, limit: int) -> Decision:
        now = self._now()
        key = f"{self._prefix}:{subject}:{window_of(now)}"
        try:
            count = int(await self._script(keys=[key], args=[WINDOW_SECONDS + 1]))
        except (RedisError, OSError) as exc:
            log.warning("rate limiter unavailable, allowing request", extra={"error": str(exc)})
            return decide(0, limit, now)
        return decide(count, limit, now)

    async def close(self) -> None:
        await self._redis.aclose()
