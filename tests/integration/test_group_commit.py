"""Group commit: concurrent writes share a transaction, yet each one succeeds or fails on
its own, on SQLite (writer thread) and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.errors import InsufficientBalance
from tests.factories import make_user


async def names(ctx: Context) -> list[str]:
    async with ctx.db.read() as conn:
        rows = await conn.execute(sa.text("SELECT username FROM users ORDER BY username"))
        return [row[0] for row in rows]


def rename(user_id: int, name: str) -> Any:
    async def op(conn: Any) -> str:
        await conn.execute(
            sa.text("UPDATE users SET username = :name WHERE id = :id"),
            {"name": name, "id": user_id},
        )
        return name

    return op


async def test_a_refusal_and_a_database_error_fail_only_their_own_operation(
    ctx: Context,
) -> None:
    first = await make_user(ctx, "ada")
    second = await make_user(ctx, "bob")
    third = await make_user(ctx, "cy")
    writes = GroupCommit(ctx.db)

    async def refused(_conn: Any) -> None:
        raise InsufficientBalance("no")

    try:
        results = await asyncio.gather(
            writes.run(rename(first["id"], "ada2")),
            writes.run(refused),
            writes.run(rename(second["id"], "cy")),  # unique violation: a database error
            writes.run(rename(third["id"], "cy2")),
            return_exceptions=True,
        )
    finally:
        await writes.close()
    assert results[0] == "ada2" and results[3] == "cy2"
    assert isinstance(results[1], InsufficientBalance)
    assert isinstance(results[2], sa.exc.IntegrityError)
    assert await names(ctx) == ["ada2", "bob", "cy2"]


async def test_concurrent_operations_are_answered_after_their_commit(ctx: Context) -> None:
    users = [await make_user(ctx, f"u{i:02d}") for i in range(20)]
    writes = GroupCommit(ctx.db)
    try:
        done = await asyncio.gather(
            *(writes.run(rename(u["id"], f"v{i:02d}"), order=-i) for i, u in enumerate(users))
        )
        # Every answer is already visible to a fresh reader: nothing is acknowledged early.
        assert await names(ctx) == sorted(done)
    finally:
        await writes.close()


async def test_an_unexpected_exception_reaches_its_caller(ctx: Context) -> None:
    writes = GroupCommit(ctx.db)

    async def broken(_conn: Any) -> None:
        raise ValueError("bug")

    try:
        with pytest.raises(ValueError, match="bug"):
            await writes.run(broken)
    finally:
        await writes.close()
