"""GET /api/v1/me/usage pages newest first by each call's time, with or without a range of
days: every call of the range once, in order, also where ids disagree with times (a call
settles, and gets its id, after one that started later)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bytespike.context import Context
from bytespike.upstream.base import Usage
from tests.conftest import FakeClock
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.integration.ledger_support import problems
from tests.usage_support import metered

MARCH_11_9H, MARCH_10_13H, MARCH_10_12H, MARCH_10_11H = (
    "2026-03-11T09:00", "2026-03-10T13:00", "2026-03-10T12:00", "2026-03-10T11:00",
)  # fmt: skip
MARCH_10 = [MARCH_10_13H, MARCH_10_12H, MARCH_10_11H]
# Each call's time (UTC), in the order the calls are recorded, so in the order of their ids.
RECORDED = (MARCH_10_12H, MARCH_10_11H, MARCH_10_13H, MARCH_11_9H)


async def recorded_out_of_order(ctx: Context, clock: FakeClock) -> dict[str, Any]:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada")
    wallet = await wallet_of(ctx, user="ada")
    for at in RECORDED:
        clock.moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
        await metered(ctx, key, wallet, "gpt-5-4", Usage(100, 10))
    assert await problems(ctx, wallet) == []
    return key


async def every_page(client: httpx.AsyncClient, key: str, **params: Any) -> list[str]:
    """The calls' times, page after page of one call, until there is no next cursor."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(len(RECORDED) + 1):
        answer = await client.get(
            "/api/v1/me/usage",
            params=params | {"limit": 1} | ({"cursor": cursor} if cursor else {}),
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [call["created_at"][:16] for call in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError(f"more pages than calls: {seen}")


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ({}, [MARCH_11_9H, *MARCH_10]),
        ({"until": "2026-03-10"}, MARCH_10),
        ({"since": "2026-03-10", "until": "2026-03-10"}, MARCH_10),
        ({"since": "2026-03-11"}, [MARCH_11_9H]),
    ],
)
async def test_pages_go_newest_first_by_time_and_visit_each_call_of_the_range_once(
    ctx: Context,
    client: httpx.AsyncClient,
    clock: FakeClock,
    days: dict[str, str],
    expected: list[str],
) -> None:
    key = await recorded_out_of_order(ctx, clock)
    assert await every_page(client, key["key"], **days) == expected
