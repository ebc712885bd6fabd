"""The stored responses' sweeper (responses/sweeper.py): it deletes every response stored more
than thirty days ago, whoever owns it, and nothing younger; several at once (every `serve`
worker runs one) delete them all between them, without error."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from bytespike.context import Context
from bytespike.db.engine import Database
from bytespike.responses import service as stored
from bytespike.responses import sweeper
from bytespike.responses.tables import stored_responses
from tests.factories import make_key, make_user, wallet_of


async def plant(ctx: Context, username: str, ages: list[timedelta]) -> list[str]:
    """A user's responses stored `ages` ago; their ids."""
    await make_user(ctx, username)
    key = await make_key(ctx, username)
    who = stored.Owner(key["user_id"], key["id"], await wallet_of(ctx, user=username))
    ids = []
    async with ctx.db.write() as conn:
        for age in ages:
            response = {"id": stored.new_id(), "status": "completed", "output": []}
            copy = stored.row(who, "mock", [], response, now=ctx.clock.now() - age)
            await stored.keep(conn, copy)
            ids.append(copy.id)
    return ids


async def stored_ids(ctx: Context) -> set[str]:
    async with ctx.db.read() as conn:
        return set((await conn.execute(sa.select(stored_responses.c.id))).scalars())


async def test_the_sweep_deletes_what_is_past_retention_and_nothing_else(ctx: Context) -> None:
    old, young = stored.RETENTION + timedelta(seconds=1), stored.RETENTION - timedelta(seconds=1)
    ada = await plant(ctx, "ada", [old, young, old + timedelta(days=400), timedelta()])
    await plant(ctx, "bob", [old, old, old])

    # In chunks of 2, so the sweep must go on past its first chunks to finish.
    assert await sweeper.sweep_once(ctx, chunk=2) == 5
    assert await stored_ids(ctx) == {ada[1], ada[3]}
    assert await sweeper.sweep_once(ctx) == 0


async def test_sweepers_of_several_workers_delete_them_all_between_them(ctx, settings, clock):
    expired = await plant(
        ctx, "ada", [stored.RETENTION + timedelta(minutes=m) for m in range(1, 41)]
    )
    kept = await plant(ctx, "bob", [timedelta(days=1)])
    workers = [
        Context(
            settings=settings, db=Database(settings.database_url), catalog=ctx.catalog, clock=clock
        )
        for _ in range(4)
    ]
    try:
        deleted = await asyncio.gather(*(sweeper.sweep_once(w, chunk=3) for w in workers))
    finally:
        for worker in workers:
            await worker.db.close()
    assert sum(deleted) == len(expired)
    assert await stored_ids(ctx) == set(kept)
