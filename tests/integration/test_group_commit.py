"""Group commit: concurrent writes share a transaction, yet each one succeeds or fails on
its own, on SQLite (writer thread) and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.db.batch import Fused, GroupCommit
from bytespike.errors import InsufficientBalance
from bytespike.settings import Settings
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


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_fused_run_commits_on_its_own_and_is_not_run_again(ctx: Context) -> None:
    """PostgreSQL: a batch's run of fused operations commits as its statement ends, and its
    callers are answered then; when the batch's other operations fail together afterwards
    (a database error), only they are run again, one by one."""
    users = [await make_user(ctx, name) for name in ("ada", "bob", "cy", "dee")]
    statement = sa.text("UPDATE users SET username = :name WHERE id = :id RETURNING id")
    general_runs = []

    def fused(user_id: int, name: str) -> Fused[str]:
        return Fused(statement, {"id": user_id, "name": name}, lambda _id: name)

    def general(user_id: int, name: str) -> Any:
        async def op(conn: Any) -> str:
            general_runs.append(name)
            return await rename(user_id, name)(conn)  # type: ignore[no-any-return]

        return op

    writes = GroupCommit(ctx.db)
    try:
        results = await asyncio.gather(
            *(
                writes.run(general(u["id"], name), fused=fused(u["id"], name))
                for u, name in ((users[0], "ada2"), (users[1], "bob2"))
            ),
            writes.run(rename(users[2]["id"], "dee")),  # unique violation: a database error
            writes.run(rename(users[3]["id"], "dee2")),
            return_exceptions=True,
        )
    finally:
        await writes.close()
    assert results[:2] == ["ada2", "bob2"] and results[3] == "dee2"
    assert isinstance(results[2], sa.exc.IntegrityError)
    assert general_runs == []  # the run committed once, as one statement, and stood
    assert await names(ctx) == ["ada2", "bob2", "cy", "dee2"]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_what_a_batch_leaves_to_its_transaction_runs_in_wallet_order(
    ctx: Context,
) -> None:
    """PostgreSQL: the operations a batch runs in its transaction (not fused, or fused but
    their statement did nothing) run in wallet order, the order in which every transaction
    locks wallets, so two replicas' transactions cannot deadlock on them."""
    ran: list[int] = []

    def op(order: int) -> Any:
        async def run(_conn: Any) -> int:
            ran.append(order)
            return order

        return run

    nothing = Fused(sa.text("SELECT CAST(:nothing AS INTEGER)"), {"nothing": None}, int)
    writes = GroupCommit(ctx.db)
    try:
        done = await asyncio.gather(
            writes.run(op(5), order=5),
            writes.run(op(1), order=1, fused=nothing),
            writes.run(op(3), order=3),
        )
    finally:
        await writes.close()
    assert done == [5, 1, 3] and ran == [1, 3, 5]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_callers_answered_by_a_batch_join_the_next_with_those_queued_meanwhile(
    ctx: Context,
) -> None:
    """PostgreSQL: after a batch commits, its callers get a turn of the event loop to queue
    their next operation before the next batch is taken, so those go in one batch with the
    operations queued while the first was in flight, not in a round trip of their own."""
    sizes: list[int] = []
    writes = GroupCommit(ctx.db, batches=sizes.append)
    in_flight = asyncio.Event()

    async def slow(conn: Any) -> str:
        in_flight.set()
        await asyncio.sleep(0.05)  # the batch is in flight meanwhile
        await conn.execute(sa.text("SELECT 1"))
        return "slow"

    async def quick(conn: Any) -> str:
        await conn.execute(sa.text("SELECT 1"))
        return "quick"

    async def call(first: Any) -> list[str]:
        return [await writes.run(first), await writes.run(quick)]  # the next one at once

    async def latecomer() -> list[str]:
        await in_flight.wait()
        return [await writes.run(quick)]

    try:
        done = await asyncio.gather(call(slow), call(quick), latecomer())
    finally:
        await writes.close()
    assert done == [["slow", "quick"], ["quick", "quick"], ["quick"]]
    assert sizes == [2, 3]  # not [2, 1, 2]: the latecomer's batch of its own


async def test_an_unexpected_exception_reaches_its_caller(ctx: Context) -> None:
    writes = GroupCommit(ctx.db)

    async def broken(_conn: Any) -> None:
        raise ValueError("bug")

    try:
        with pytest.raises(ValueError, match="bug"):
            await writes.run(broken)
    finally:
        await writes.close()


@pytest.fixture
async def sqlite_ctx(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Context]:
    path = tmp_path / "bytespike.db"
    shutil.copy(sqlite_template, path)
    context = Context.build(Settings(database_url=f"sqlite:///{path}", secret_key="k"))
    yield context
    await context.db.close()


async def test_a_writer_in_another_process_never_stalls_the_event_loop(
    sqlite_ctx: Context,
) -> None:
    """While another process (the CLI, say) holds SQLite's write lock, a batch waits for it
    off the event loop, which keeps serving, and commits once the lock is free."""
    ctx = sqlite_ctx
    user = await make_user(ctx, "ada")
    other = sqlite3.connect(sa.make_url(ctx.settings.database_url).database or "")
    other.isolation_level = None
    other.execute("BEGIN IMMEDIATE")  # the other process's write transaction
    writes = GroupCommit(ctx.db)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        pending = asyncio.create_task(writes.run(rename(user["id"], "ada2")))
        await asyncio.sleep(0.5)
        assert not pending.done()  # it waits for the lock ...
        assert ticks >= 20  # ... and the loop kept running meanwhile
        other.execute("COMMIT")
        assert await asyncio.wait_for(pending, 10) == "ada2"
        assert await names(ctx) == ["ada2"]
    finally:
        ticking.cancel()
        other.close()
        await writes.close()


async def test_hot_statements_store_exactly_what_sqlalchemy_reads_back(ctx: Context) -> None:
    """The SQLite writer runs hot statements on the driver itself; what it stores (here a
    hold's timestamps and a NULL) must read back through SQLAlchemy unchanged."""
    from datetime import timedelta

    from bytespike.billing import holds
    from bytespike.billing.tables import holds as holds_table
    from tests.factories import top_up, wallet_of

    await make_user(ctx, "ada")
    await top_up(ctx, "5", user="ada")
    wallet = await wallet_of(ctx, user="ada")
    now = ctx.clock.now()
    writes = GroupCommit(ctx.db)

    async def place(conn: Any) -> int:
        placed = await holds.place(conn, wallet, 1_000, now=now, ttl=timedelta(minutes=10))
        return placed.hold_id

    try:
        hold_id = await writes.run(place)
    finally:
        await writes.close()
    async with ctx.db.read() as conn:
        row = (await conn.execute(sa.select(holds_table).where(holds_table.c.id == hold_id))).one()
    assert row.created_at.replace(tzinfo=None) == now.replace(tzinfo=None)
    assert row.expires_at.replace(tzinfo=None) == (now + timedelta(minutes=10)).replace(tzinfo=None)
    assert (row.amount_micros, row.status, row.key_id) == (1_000, "pending", None)


def size_of(path: str) -> int:
    return os.path.getsize(path)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_sqlite_wal_stops_growing_under_sustained_writes(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch after batch with no pause, as under load: checkpoints must still copy the whole
    WAL back so it starts over. (Before they took the write lock, the WAL grew for as long
    as the load lasted: over a gigabyte in 25 seconds of benchmark.)"""
    from datetime import timedelta

    from bytespike.billing import holds
    from bytespike.db import batch
    from tests.factories import top_up, wallet_of

    monkeypatch.setattr(batch, "CHECKPOINT_EVERY", 20)
    await make_user(ctx, "ada")
    await top_up(ctx, "500", user="ada")
    wallet = await wallet_of(ctx, user="ada")
    wal = ctx.settings.database_url.removeprefix("sqlite:///") + "-wal"
    now = ctx.clock.now()
    writes = GroupCommit(ctx.db)

    async def place(conn: Any) -> int:
        placed = await holds.place(conn, wallet, 1_000, now=now, ttl=timedelta(minutes=10))
        return placed.hold_id

    try:
        for _ in range(40):
            await writes.run(place)
        early = size_of(wal)
        for _ in range(400):
            await writes.run(place)
        late = size_of(wal)
    finally:
        await writes.close()
    assert early > 0
    assert late < 2 * early, f"the WAL grew from {early} to {late} bytes"
