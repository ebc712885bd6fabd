"""A rate-limit decision from a count, and the headers that tell clients about it."""

from __future__ import annotations

import pytest

from bytespike.ratelimit.base import Decision, decide, window_of

MINUTE = 29_000_000 * 60


@pytest.mark.parametrize(
    ("count", "allowed", "remaining"),
    [(1, True, 4), (4, True, 1), (5, True, 0), (6, False, 0), (500, False, 0), (0, True, 5)],
)
def test_decide_counts_against_the_limit(count, allowed, remaining):
    decision = decide(count, 5, MINUTE + 12.7)
    assert (decision.allowed, decision.remaining, decision.limit) == (allowed, remaining, 5)


@pytest.mark.parametrize(("offset", "reset"), [(0, 60), (0.99, 60), (1, 59), (59.5, 1)])
def test_reset_counts_down_to_the_next_minute(offset, reset):
    assert decide(1, 5, MINUTE + offset).reset_seconds == reset


def test_windows_are_wall_clock_minutes():
    assert window_of(MINUTE) == window_of(MINUTE + 59.999) == MINUTE // 60
    assert window_of(MINUTE + 60) == MINUTE // 60 + 1


def test_headers_when_allowed():
    assert Decision(True, 600, 599, 42).headers() == {
        "RateLimit-Policy": '"requests";q=600;w=60',
        "RateLimit": '"requests";r=599;t=42',
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "599",
        "x-ratelimit-reset-requests": "42s",
    }


def test_headers_when_refused_add_retry_after():
    headers = Decision(False, 3, 0, 17).headers()
    assert headers["Retry-After"] == "17"
    assert headers["RateLimit"] == '"requests";r=0;t=17'
