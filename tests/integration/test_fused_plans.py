"""A settlement on PostgreSQL reads its own holds, however many calls are in flight.

A gateway's connection plans each fused statement once, often on the empty tables of a new
database, and keeps the plan (billing/fused.py). Planned so, a settlement that looked its
hold up by id and `status = 'pending'` scanned the pending holds' partial index: each one
read every hold in flight (with 1,000 in flight, a run of 8 settlements took 5 times as
long; with 5,000, 20 times). Here the statements are planned on empty tables as a gateway
plans them, then run with many holds pending, in a transaction rolled back after."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from bytespike.billing.fused import RESERVE_MANY, SETTLE, SETTLE_MANY, reserve_params, settle_params
from bytespike.context import Context
from bytespike.db.direct import Plans
from bytespike.upstream.base import Usage
from bytespike.usage import repo as usage_repo
from tests.integration.fused_support import account

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)

IN_FLIGHT = 300
SETTLED = 8  # a run's worth
OTHERS = 3000  # other users (each with a wallet), orgs and API keys on the server
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def settlement(hold: int) -> dict[str, Any]:
    """SETTLE's parameters for `hold`, charged 50 micro-dollars of its 100, from the usage
    record the general path would write (only its hold, cost, time and counts are read)."""
    record = usage_repo.row(
        wallet_id=0,
        key_id=0,
        hold_id=hold,
        model="gpt-5-4",
        provider="openai",
        usage=Usage(input_tokens=10, output_tokens=5),
        cost=50,
        status="ok",
        http_status=200,
        stream=False,
        latency_ms=1,
        now=NOW,
        request_id="req_plans",
    )
    return settle_params(record)


async def others(conn: Any, key: int) -> None:
    """OTHERS users with a wallet each, OTHERS orgs, and OTHERS more keys of `key`'s user:
    a server's accounts, which a run must not read through."""
    await conn.execute(
        "INSERT INTO users (username, email, tier, created_at)"
        " SELECT 'u' || g, 'u' || g || '@example.com', 'individual', $2"
        " FROM generate_series(1, $1) AS g",
        OTHERS, NOW,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO wallets (user_id, low_balance_threshold_micros, created_at)"
        " SELECT id, 0, $1 FROM users WHERE username LIKE 'u%'",
        NOW,
    )
    await conn.execute(
        "INSERT INTO orgs (name, created_at) SELECT 'org ' || g, $2"
        " FROM generate_series(1, $1) AS g",
        OTHERS, NOW,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO api_keys (user_id, key_hash, prefix, rate_limit, all_models, created_at)"
        " SELECT user_id, md5(g::text) || md5(g::text), 'bs_other', 60, true, $3"
        " FROM api_keys, generate_series(1, $2) AS g WHERE api_keys.id = $1",
        key, OTHERS, NOW,
    )  # fmt: skip


async def holds_read(
    conn: Any, wallet: int, key: int, sql: str, arguments: Callable[[list[int]], list[Any]]
) -> tuple[int, list[int], list[int]]:
    """Plans `sql` as a gateway does (generic, on the tables as they are: empty), then puts
    IN_FLIGHT + SETTLED holds in flight beside OTHERS other accounts and runs it on the
    arguments `arguments` makes of the last SETTLED holds' ids; rolled back. How many holds
    it settled, and the rows each of its scans of `holds` and of `wallets` read."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    await conn.execute(f"PREPARE settling AS {sql}")
    parameters = max(int(n) for n in re.findall(r"\$(\d+)", sql))
    # NULL for each parameter: this only makes the generic plan, which the statement keeps.
    await conn.execute(f"EXPLAIN EXECUTE settling({', '.join(['NULL'] * parameters)})")
    transaction = conn.transaction()
    await transaction.start()
    try:
        await others(conn, key)
        ids = await conn.fetch(
            "INSERT INTO holds (wallet_id, key_id, model, amount_micros, status, created_at,"
            " expires_at) SELECT $1, $2, 'gpt-5-4', 100, 'pending', $3, $4"
            " FROM generate_series(1, $5) RETURNING id",
            wallet, key, NOW, NOW + timedelta(minutes=10), IN_FLIGHT + SETTLED,
        )  # fmt: skip
        await conn.execute(
            "UPDATE wallets SET available_micros = available_micros - $2,"
            " held_micros = held_micros + $2 WHERE id = $1",
            wallet, 100 * len(ids),
        )  # fmt: skip
        args = arguments(sorted(row["id"] for row in ids)[IN_FLIGHT:])
        # EXPLAIN takes no parameters: the arguments as literals, typed by the statement.
        literals = [
            await conn.fetchval("SELECT quote_nullable($1::text)", None if a is None else str(a))
            for a in args
        ]
        plan = await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE settling({', '.join(literals)})"
        )
        settled = await conn.fetchval("SELECT count(*) FROM holds WHERE status = 'settled'")
    finally:
        await transaction.rollback()
    found = orjson.loads(plan)[0]["Plan"]
    return settled, list(_reads(found)), list(_reads(found, "wallets"))


def _reads(node: dict[str, Any], relation: str = "holds") -> Iterator[int]:
    """The rows each scan of `relation` in the plan read (returned or filtered out)."""
    if node.get("Relation Name") == relation:
        rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        yield rows * node["Actual Loops"]
    for child in node.get("Plans", []):
        yield from _reads(child, relation)


async def test_a_run_of_settlements_reads_only_its_own_holds(ctx: Context, db_url: str) -> None:
    key, wallet = await account(ctx, "ada", "100")

    def run(ids: list[int]) -> list[Any]:
        return SETTLE_MANY.arguments([settlement(hold) for hold in ids])

    conn = await asyncpg.connect(db_url)
    try:
        settled, reads, wallet_reads = await holds_read(conn, wallet, key, SETTLE_MANY.sql, run)
    finally:
        await conn.close()
    assert settled == SETTLED
    # Locking its holds, then closing them: 8 rows each time, not the 300 in flight too.
    assert reads and max(reads) <= SETTLED, reads
    # Its one wallet, looked up by id to lock it and to charge it: not every wallet.
    assert wallet_reads and max(wallet_reads) <= 1, wallet_reads


async def test_a_settlement_alone_reads_only_its_own_hold(ctx: Context, db_url: str) -> None:
    key, wallet = await account(ctx, "ada", "100")
    plans = Plans(ctx.db.dialect)
    compiled = plans.get(SETTLE, settlement(0))

    def one(ids: list[int]) -> list[Any]:
        return compiled.arguments(settlement(ids[0]))

    conn = await asyncpg.connect(db_url)
    try:
        settled, reads, wallet_reads = await holds_read(conn, wallet, key, compiled.sql, one)
    finally:
        await conn.close()
    assert settled == 1
    assert reads and max(reads) <= 1, reads
    assert wallet_reads and max(wallet_reads) <= 1, wallet_reads


async def test_a_run_of_reserves_reads_only_its_own_keys_orgs_and_wallets(
    ctx: Context, db_url: str
) -> None:
    """Planned on empty tables, a run of reserves looks its calls' keys, orgs and wallet up
    by primary key once the server has thousands of each: it read every key before (a hash
    join over the 100 rows the planner takes a function's result for)."""
    key, wallet = await account(ctx, "ada", "100")
    hold = reserve_params(
        key_id=key, wallet_id=wallet, model="gpt-5-4", amount=100, now=NOW,
        ttl=timedelta(minutes=10), version=0,
    )  # fmt: skip
    params = [hold] * SETTLED
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE reserving AS {RESERVE_MANY.sql}")
        await conn.execute("EXPLAIN EXECUTE reserving(NULL)")  # the plan, made on empty tables
        transaction = conn.transaction()
        await transaction.start()
        try:
            await others(conn, key)
            (argument,) = RESERVE_MANY.arguments(params)
            literal = await conn.fetchval("SELECT quote_literal($1::text)", argument)
            plan = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE reserving({literal})"
            )
            held = await conn.fetchval("SELECT count(*) FROM holds WHERE status = 'pending'")
        finally:
            await transaction.rollback()
    finally:
        await conn.close()
    assert held == SETTLED
    found = orjson.loads(plan)[0]["Plan"]
    for relation in ("api_keys", "orgs", "wallets"):
        reads = list(_reads(found, relation))
        # At most one row per call (its key, its orgs), or per wallet: never the others.
        assert reads and max(reads) <= SETTLED, (relation, reads)
