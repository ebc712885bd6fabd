"""The lookups beside the metered path that read a metered table (ledger_entries,
usage_records, which grow by every call) go through an index, never a scan of the table:
each statement's plan, on SQLite and on PostgreSQL (told to avoid sequential scans, as it
would on tables of any size, so a plan that cannot use the index still shows a scan)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bytespike.context import Context
from bytespike.usage import receipts
from bytespike.usage import repo as usage_repo


async def plan(ctx: Context, query: Any) -> str:
    async with ctx.db.read() as conn:
        sql = str(query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
        if ctx.db.dialect.name == "postgresql":
            await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            return "\n".join((await conn.execute(sa.text(f"EXPLAIN {sql}"))).scalars())
        rows = await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))
        return "\n".join(str(row[3]) for row in rows)


def scans(found: str) -> bool:
    return "Seq Scan" in found or any(line.startswith("SCAN ") for line in found.splitlines())


async def test_a_receipts_entries_are_read_by_primary_key_and_the_endings_index(
    ctx: Context,
) -> None:
    """A receipt reads the entries its record names by primary key and looks the hold's
    'release' or 'expire' up in their partial index: the query's condition is the index's,
    so the planner can use it (usage/receipts.py)."""
    found = await plan(ctx, receipts.entries_query(7, 3, 1, 2))
    assert "ix_ledger_hold_ended" in found and not scans(found), found
    if ctx.db.dialect.name == "postgresql":
        assert "pk_ledger_entries" in found, found
    else:
        assert "USING INTEGER PRIMARY KEY" in found, found


async def test_a_settlement_run_again_finds_its_record_in_its_wallets_time_index(
    ctx: Context,
) -> None:
    """A settlement run again after its batch failed looks for the record it may have
    written: among its wallet's records since the call began, not through every record
    (no index leads with hold_id)."""
    query = usage_repo.recorded_query(7, 3, datetime(2026, 11, 28, tzinfo=UTC))
    found = await plan(ctx, query)
    assert "ix_usage_wallet_time_id" in found and not scans(found), found
