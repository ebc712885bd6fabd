"""Keeping stored responses on PostgreSQL's group-commit writer (responses/repo.py's KEEP and
KEEP_MANY): a batch's copies go as one statement and each reads back as it was stored."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.db.direct import PgDirect
from bytespike.errors import NotFound
from bytespike.responses import service as stored
from bytespike.responses.repo import KEEP, KEEP_MANY, Stored
from bytespike.responses.tables import stored_responses
from tests.factories import make_key, make_user, wallet_of
from tests.integration.fused_support import record_runs

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


async def owner(ctx: Context, username: str) -> stored.Owner:
    user = await make_user(ctx, username)
    key = await make_key(ctx, username)
    return stored.Owner(user["id"], key["id"], await wallet_of(ctx, user=username))


def copy(ctx: Context, who: stored.Owner, text: str, *, age: timedelta = timedelta()) -> Stored:
    """A stored response saying `text`, made `age` ago. Its texts have quotes, a backslash, a
    NUL (which the model may write; JSON escapes it) and letters beyond ASCII, which the run's
    JSON argument must carry as they are."""
    response = {
        "id": stored.new_id(),
        "object": "response",
        "status": "completed",
        "model": "gpt-5-4",
        "output": [
            {"type": "message", "content": [{"type": "output_text", "text": f"{text}\x00"}]}
        ],
    }
    items = [{"role": "user", "content": f'say "{text}" \\ \u00e9\u6f22 \\u0000'}]
    return stored.row(who, "gpt-5-4", items, response, now=ctx.clock.now() - age)


async def keep_alone(ctx: Context, copy: Stored) -> None:
    """The general path: purge and insert in one transaction."""
    async with ctx.db.write() as conn:
        await stored.keep(conn, copy)


async def keep_batched(ctx: Context, copies: list[Stored]) -> list[Stored]:
    """`copies` queued together on a group-commit writer, as the Responses route queues
    them; the copies the general path had to keep (none when the fused statements did)."""
    general: list[Stored] = []

    async def keep(conn: Any, c: Stored) -> None:
        general.append(c)
        await stored.keep(conn, c)

    writes = GroupCommit(ctx.db)
    try:
        await asyncio.gather(
            *(
                writes.run(
                    lambda conn, c=c: keep(conn, c), order=c.wallet_id, fused=stored.fused_keep(c)
                )
                for c in copies
            )
        )
    finally:
        await writes.close()
    return general


async def rows(ctx: Context) -> dict[str, Stored]:
    async with ctx.db.read() as conn:
        found = (await conn.execute(sa.select(stored_responses))).mappings().all()
    return {row["id"]: Stored(**row) for row in found}


async def test_a_batch_of_stored_responses_is_one_statement_and_each_reads_back(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, bob = await owner(ctx, "ada"), await owner(ctx, "bob")
    earlier = copy(ctx, ada, "earlier", age=timedelta(days=1))
    await keep_alone(ctx, earlier)
    runs = record_runs(monkeypatch)
    batch = [copy(ctx, who, f"answer {i}") for i, who in enumerate((ada, bob, ada, bob))]

    assert await keep_batched(ctx, batch) == []
    assert [(sql, len(params)) for sql, params in runs] == [(KEEP_MANY.sql, 4)]
    kept = await rows(ctx)
    assert set(kept) == {earlier.id, *(c.id for c in batch)}
    for c in batch:
        assert kept[c.id] == c  # every column as given, the texts byte for byte
        assert await stored.get(ctx, c.user_id, c.id) == orjson.loads(c.response)
    with pytest.raises(NotFound):
        await stored.get(ctx, bob.user_id, batch[0].id)  # ada's, not bob's


async def test_a_stored_response_alone_is_one_statement(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await owner(ctx, "ada")
    statements: list[Any] = []
    values = PgDirect.values

    async def recorded(self: PgDirect, statement: Any, params: list[dict[str, Any]]) -> list[Any]:
        statements.append(statement)
        return await values(self, statement, params)

    monkeypatch.setattr(PgDirect, "values", recorded)
    fresh = copy(ctx, ada, "new")

    assert await keep_batched(ctx, [fresh]) == []
    assert statements == [KEEP]
    assert await rows(ctx) == {fresh.id: fresh}


async def test_keeping_a_stored_response_checks_no_foreign_key_on_postgresql(
    ctx: Context,
) -> None:
    """On PostgreSQL a stored response's insert runs no trigger (migration 0018: each of its
    three references was a query and a share lock on the user's, key's and wallet's row)."""
    who = await owner(ctx, "ada")
    async with ctx.db.batch() as (_conn, raw), raw.transaction():
        (argument,) = KEEP_MANY.arguments([asdict(copy(ctx, who, "kept"))])
        literal = await raw.fetchval("SELECT quote_literal($1::text)", argument)
        plan = await raw.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {KEEP_MANY.sql.replace('$1', literal)}"
        )
        kept = await raw.fetchval("SELECT count(*) FROM stored_responses")
    assert kept == 1
    assert plan[0]["Triggers"] == []  # the engine's connections decode JSON themselves
