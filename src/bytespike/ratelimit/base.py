"""The RateLimiter protocol, its decision, and how a decision is told to clients.

Limits are fixed one-minute windows aligned to the wall clock, so every replica sharing
Redis agrees on when a window resets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from bytespike.records import record

WINDOW_SECONDS = 60


@record
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the current window ends
    reset_at: int = 0  # when it ends, in seconds since the epoch

    def headers(self) -> dict[str, str]:
        """IETF draft RateLimit fields plus the OpenAI-style ones SDK users look for."""
        headers = {
            "RateLimit-Policy": f'"requests";q={self.limit};w={WINDOW_SECONDS}',
            "RateLimit": f'"requests";r={self.remaining};t={self.reset_seconds}',
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{self.reset_seconds}s",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers

    def anthropic_headers(self) -> dict[str, str]:
        """Anthropic's names for the same state, the reset as an RFC 3339 time."""
        reset = datetime.fromtimestamp(self.reset_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "anthropic-ratelimit-requests-limit": str(self.limit),
            "anthropic-ratelimit-requests-remaining": str(self.remaining),
            "anthropic-ratelimit-requests-reset": reset,
        }


def decide(count: int, limit: int, now: float) -> Decision:
    """The decision for the `count`-th request of the current window."""
    reset = WINDOW_SECONDS - int(now) % WINDOW_SECONDS
    return Decision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=reset,
        reset_at=int(now) + reset,
    )


def window_of(now: float) -> int:
    return int(now) // WINDOW_SECONDS


class RateLimiter(Protocol):
    async def hit(self, subject: str, limit: int) -> Decision:
        """Count one request for `subject` and say whether it is within `limit` per minute."""
        ...

    async def close(self) -> None: ...
