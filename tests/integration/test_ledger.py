"""The ledger on both databases: balanced entries, a verifiable history, idempotent top-ups."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bytespike.billing import ledger
from bytespike.billing.ledger import Balances, Movement, Overdraft
from bytespike.billing.tables import holds as holds_table
from bytespike.billing.tables import ledger_entries, wallets
from bytespike.errors import Conflict
from tests.factories import make_user, top_up
from tests.integration.ledger_support import (
    balances,
    funded_wallet,
    place,
    problems,
    settle,
    usd,
)


async def tamper(ctx, table: sa.Table, row_id: int, **values: object) -> None:
    """Change a row behind the ledger's back, as a stray UPDATE or a bad restore would."""
    async with ctx.db.write() as conn:
        await conn.execute(sa.update(table).where(table.c.id == row_id).values(**values))


def test_a_movement_must_balance():
    Movement(available=5, topped_up=5)
    Movement(available=-3, held=3)
    Movement(held=-4, available=1, spent=3)
    with pytest.raises(ValueError, match="unbalanced"):
        Movement(available=1)
    with pytest.raises(ValueError, match="unbalanced"):
        Movement(available=-4, held=3)
    with pytest.raises(ValueError, match="unbalanced"):
        Movement(spent=1, topped_up=2)


async def test_verify_is_clean_after_top_ups_holds_and_settlements(ctx):
    wallet = await funded_wallet(ctx, "10")
    await top_up(ctx, "2.5", user="ada")
    await place(ctx, wallet, "3")
    assert await balances(ctx, wallet) == Balances(usd("9.5"), usd("3"), 0, usd("12.5"), 0)
    assert await problems(ctx, wallet) == []


@pytest.mark.parametrize(
    ("column", "delta"),
    [("available_micros", 1), ("spent_micros", 1), ("topped_up_micros", -1)],
)
async def test_verify_detects_a_tampered_running_balance(ctx, column, delta):
    wallet = await funded_wallet(ctx, "10")
    await tamper(ctx, wallets, wallet, **{column: getattr(wallets.c, column) + delta})
    found = await problems(ctx, wallet)
    assert len(found) == 1
    assert "!= sum of entries" in found[0]


async def test_verify_detects_held_money_without_an_open_hold(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "4")
    await tamper(ctx, holds_table, hold, status="released")
    assert await problems(ctx, wallet) == [f"held {usd('4')} != open holds 0"]


class SettlingBetweenReads:
    """`verify`'s connection, where before each statement it runs, one more settlement of
    the wallet commits on another connection: the worst interleaving, made deterministic."""

    def __init__(self, ctx, conn, pending: list[int]) -> None:
        self._ctx, self._conn, self._pending = ctx, conn, pending
        self.dialect = conn.dialect
        self.settled = 0

    async def execute(self, statement, parameters=None):
        if self._pending:
            await settle(self._ctx, self._pending.pop(), "0.4")
            self.settled += 1
        return await self._conn.execute(statement, parameters)


async def test_verify_sees_no_drift_while_settlements_commit_between_its_reads(ctx):
    """PostgreSQL gives each statement of a READ COMMITTED transaction its own snapshot: a
    verify that read the entries, then the wallet row, then the holds, saw a settlement
    that committed in between in some and not in others, and reported drift that was not
    there. Whatever commits around it, verify must read one snapshot."""
    wallet = await funded_wallet(ctx, "10")
    pending = [await place(ctx, wallet, "1") for _ in range(4)]
    async with ctx.db.read() as conn:
        interleaved = SettlingBetweenReads(ctx, conn, pending)
        assert await ledger.verify(interleaved, wallet) == []
    assert interleaved.settled >= 1
    assert await problems(ctx, wallet) == []


async def test_the_database_rejects_an_unbalanced_entry(ctx, clock):
    wallet = await funded_wallet(ctx, "10")
    with pytest.raises(IntegrityError):
        async with ctx.db.write() as conn:
            await conn.execute(
                sa.insert(ledger_entries).values(
                    wallet_id=wallet, kind="adjust", d_available=1, created_at=clock.now()
                )
            )
    assert await problems(ctx, wallet) == []


async def test_the_database_rejects_a_negative_balance(ctx):
    wallet = await funded_wallet(ctx, "10")
    with pytest.raises(IntegrityError):
        await tamper(ctx, wallets, wallet, available_micros=-1)
    assert await balances(ctx, wallet) == Balances(usd("10"), 0, 0, usd("10"), 0)


async def test_post_refuses_an_overdraft_and_writes_nothing(ctx, clock):
    wallet = await funded_wallet(ctx, "10")
    async with ctx.db.write() as conn:
        with pytest.raises(Overdraft):
            await ledger.post(
                conn,
                wallet,
                "adjust",
                Movement(available=-usd("10.000001"), adjusted=-usd("10.000001")),
                now=clock.now(),
            )
    assert await balances(ctx, wallet) == Balances(usd("10"), 0, 0, usd("10"), 0)
    assert await problems(ctx, wallet) == []


async def test_a_negative_adjustment_within_available_is_recorded(ctx, clock):
    wallet = await funded_wallet(ctx, "10")
    async with ctx.db.write() as conn:
        await ledger.post(
            conn,
            wallet,
            "adjust",
            Movement(available=-usd("4"), adjusted=-usd("4")),
            now=clock.now(),
        )
    assert await balances(ctx, wallet) == Balances(usd("6"), 0, 0, usd("10"), -usd("4"))
    assert await problems(ctx, wallet) == []


async def test_a_repeated_reference_is_applied_once(ctx):
    wallet = await funded_wallet(ctx, "0")
    first = await top_up(ctx, "25", user="ada", reference="stripe:pi_1")
    again = await top_up(ctx, "25", user="ada", reference="stripe:pi_1")
    assert (first["applied"], again["applied"]) == (True, False)
    assert again["id"] == first["id"]
    assert await balances(ctx, wallet) == Balances(usd("25"), 0, 0, usd("25"), 0)
    assert await problems(ctx, wallet) == []


async def test_a_reference_reused_for_a_different_top_up_is_a_conflict(ctx):
    wallet = await funded_wallet(ctx, "0")
    await make_user(ctx, "bob")
    await top_up(ctx, "25", user="ada", reference="stripe:pi_1")
    with pytest.raises(Conflict):
        await top_up(ctx, "26", user="ada", reference="stripe:pi_1")
    with pytest.raises(Conflict):
        await top_up(ctx, "25", user="bob", reference="stripe:pi_1")
    assert await balances(ctx, wallet) == Balances(usd("25"), 0, 0, usd("25"), 0)


async def test_concurrent_top_ups_with_one_reference_apply_once(ctx):
    wallet = await funded_wallet(ctx, "0")
    results = await asyncio.gather(
        *(top_up(ctx, "25", user="ada", reference="stripe:pi_retry") for _ in range(20))
    )
    assert sum(r["applied"] for r in results) == 1
    assert len({r["id"] for r in results}) == 1
    assert await balances(ctx, wallet) == Balances(usd("25"), 0, 0, usd("25"), 0)
    assert await problems(ctx, wallet) == []


async def test_concurrent_top_ups_with_distinct_references_all_apply(ctx):
    wallet = await funded_wallet(ctx, "0")
    results = await asyncio.gather(
        *(top_up(ctx, "0.1", user="ada", reference=f"ref-{i}") for i in range(20))
    )
    assert all(r["applied"] for r in results)
    assert await balances(ctx, wallet) == Balances(usd("2"), 0, 0, usd("2"), 0)
    assert await problems(ctx, wallet) == []
