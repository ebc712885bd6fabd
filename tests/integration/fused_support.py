"""Watching PostgreSQL's group-commit writer send runs of fused operations (db/direct.py's
Many) as one statement each."""

from __future__ import annotations

from typing import Any

import pytest

from bytespike.db.direct import Many, PgDirect


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
