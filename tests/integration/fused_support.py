"""For the tests of PostgreSQL's fused statements: a paying account, and watching the
group-commit writer send runs of fused operations (db/direct.py's Many) as one statement
each."""

from __future__ import annotations

from typing import Any

import pytest

from bytespike.context import Context
from bytespike.db.direct import Many, PgDirect
from tests.factories import make_key, make_user, top_up, wallet_of


async def account(ctx: Context, username: str, usd: str) -> tuple[int, int]:
    """A user with `usd` of credit and an uncapped key: (key id, wallet id)."""
    await make_user(ctx, username)
    await top_up(ctx, usd, user=username)
    key = await make_key(ctx, username)
    return key["id"], await wallet_of(ctx, user=username)


def record_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every run a batch sends as one statement from now on: its SQL and its calls'
    parameters (an object per call)."""
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    many = PgDirect.many

    async def recorded(self: PgDirect, run: Many, params: list[dict[str, Any]]) -> list[Any]:
        runs.append((run.sql, params))
        return await many(self, run, params)

    monkeypatch.setattr(PgDirect, "many", recorded)
    return runs
