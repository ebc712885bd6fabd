"""Migration 0017 on a database with calls in it: the usage records of calls made before it
come to name their holds' 'hold' and 'settle' entries, as a call made after names them, and
their receipts list the same entries as before; the receipt's old index goes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from bytespike import catalog
from bytespike.billing import reconciliation
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.db.engine import Database
from bytespike.settings import Settings
from bytespike.upstream.base import Usage
from bytespike.usage import receipts
from tests.conftest import FakeClock
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.services import own_postgres_database
from tests.usage_support import metered


@pytest.fixture(params=["sqlite", "postgres"])
def own_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own: it goes back a revision and forward again."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        migrate.upgrade(url)
        yield url
        return
    with own_postgres_database("bytespike_0017") as url:
        migrate.upgrade(url)
        yield url


async def calls(ctx: Context, clock: FakeClock) -> int:
    """A settled call, one settled after its hold expired, and one that ended without
    usage, for one key; the wallet."""
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada")
    wallet = await wallet_of(ctx, user="ada")
    usage = Usage(input_tokens=100, output_tokens=20)
    await metered(ctx, key, wallet, "gpt-5-4", usage)
    await metered(ctx, key, wallet, "gpt-5-4", usage, outlived=clock)
    await metered(ctx, key, wallet, "gpt-5-4", None)
    return wallet


async def named(db: Database) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.text("SELECT id, hold_entry_id, settle_entry_id FROM usage_records ORDER BY id")
        )
        return [tuple(row) for row in rows]


async def receipt_entries(db: Database, wallet: int) -> list[list[tuple[int, str]]]:
    async with db.read() as conn:
        ids = (await conn.execute(sa.text("SELECT id FROM usage_records ORDER BY id"))).scalars()
        listed = []
        for record_id in list(ids):
            found = await receipts.find(conn, wallet, int(record_id))
            assert found is not None
            listed.append([(int(e.id), e.kind) for e in found.entries])
        return listed


async def index_names(db: Database) -> set[str]:
    async with db.read() as conn:
        names = await conn.run_sync(
            lambda sync: {ix["name"] for ix in sa.inspect(sync).get_indexes("ledger_entries")}
        )
        return {str(name) for name in names}


async def test_records_made_before_0017_name_their_entries_after_it(
    own_url: str, clock: FakeClock
) -> None:
    settings = Settings(
        database_url=own_url, admin_token="t", redis_url=None, secret_key="test-secret-key"
    )
    ctx = Context(settings=settings, db=Database(own_url), catalog=catalog.load(), clock=clock)
    try:
        wallet = await calls(ctx, clock)
        made = await named(ctx.db)
        listed = await receipt_entries(ctx.db, wallet)
        assert "ix_ledger_hold_ended" in await index_names(ctx.db)
        assert "ix_ledger_key_model_time" not in await index_names(ctx.db)
    finally:
        await ctx.db.close()
    assert [[kind for _, kind in entries] for entries in listed] == [
        ["hold", "settle"],
        ["hold", "expire", "settle"],
        ["hold", "release"],
    ]
    assert all(hold is not None for _, hold, _ in made)
    assert [settle is None for *_, settle in made] == [False, False, True]

    # Back to 0016 (the ids' columns dropped, the old index made again), then forward.
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(own_url), "0016")
    db = Database(own_url)
    try:
        assert "ix_ledger_key_model_time" in await index_names(db)
        async with db.read() as conn:
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("usage_records")}
            )
        assert "hold_entry_id" not in columns and "settle_entry_id" not in columns
    finally:
        await db.close()
    await asyncio.to_thread(migrate.upgrade, own_url)

    db = Database(own_url)
    try:
        assert await named(db) == made
        assert await receipt_entries(db, wallet) == listed
        assert "ix_ledger_key_model_time" not in await index_names(db)
        async with db.read() as conn:
            assert (await reconciliation.run(conn)).ok
    finally:
        await db.close()


async def test_a_record_an_older_version_writes_after_0017_still_shows_its_entries(
    ctx: Context, clock: FakeClock
) -> None:
    """In a rolling upgrade the old replicas keep serving after the migration (docs/deploy.md)
    and write usage records that name no entries: their receipts still list every entry of
    their holds, and `ledger verify` stays clean."""
    wallet = await calls(ctx, clock)
    listed = await receipt_entries(ctx.db, wallet)
    async with ctx.db.write() as conn:
        await conn.execute(
            sa.text("UPDATE usage_records SET hold_entry_id = NULL, settle_entry_id = NULL")
        )
    assert await receipt_entries(ctx.db, wallet) == listed
    async with ctx.db.read() as conn:
        assert (await reconciliation.run(conn)).ok
