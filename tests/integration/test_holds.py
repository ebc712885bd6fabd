"""Holds on both databases: place, settle, release and expiry move exactly the right money."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bytespike.billing import holds, sweeper
from bytespike.billing.holds import HoldClosed, Settlement
from bytespike.billing.ledger import Balances
from bytespike.billing.tables import holds as holds_table
from bytespike.billing.tables import ledger_entries
from bytespike.errors import InsufficientBalance
from tests.integration.ledger_support import (
    balances,
    funded_wallet,
    place,
    problems,
    release,
    settle,
    usd,
)


def funds(available: str, held: str = "0", spent: str = "0", topped_up: str = "10") -> Balances:
    return Balances(usd(available), usd(held), usd(spent), usd(topped_up), 0)


async def hold_status(ctx, hold_id: int) -> str:
    async with ctx.db.read() as conn:
        query = sa.select(holds_table.c.status).where(holds_table.c.id == hold_id)
        return str((await conn.execute(query)).scalar_one())


async def settle_entry(ctx, hold_id: int) -> int | None:
    """The id of the hold's 'settle' entry, which `holds.settle` returns for its usage record
    (an assertion's right side, run after its left side settled)."""
    async with ctx.db.read() as conn:
        e = ledger_entries.c
        query = sa.select(e.id).where(e.hold_id == hold_id, e.kind == "settle")
        return (await conn.execute(query)).scalar_one_or_none()


async def entry_kinds(ctx, wallet_id: int) -> list[str]:
    async with ctx.db.read() as conn:
        e = ledger_entries.c
        rows = await conn.execute(sa.select(e.kind).where(e.wallet_id == wallet_id).order_by(e.id))
        return list(rows.scalars())


async def test_place_moves_money_from_available_to_held(ctx):
    wallet = await funded_wallet(ctx, "10")
    await place(ctx, wallet, "2.5")
    await place(ctx, wallet, "7.5")  # exactly what is left is still allowed
    assert await balances(ctx, wallet) == funds("0", held="10")
    assert await problems(ctx, wallet) == []


async def test_place_beyond_available_is_refused_and_writes_nothing(ctx):
    wallet = await funded_wallet(ctx, "10")
    await place(ctx, wallet, "4")
    with pytest.raises(InsufficientBalance):
        await place(ctx, wallet, "6.000001")
    assert await balances(ctx, wallet) == funds("6", held="4")
    assert await entry_kinds(ctx, wallet) == ["topup", "hold"]
    assert await problems(ctx, wallet) == []


async def test_refused_place_leaves_no_hold_even_if_the_transaction_commits(ctx):
    """A caller that catches the refusal and carries on must not commit a phantom hold."""
    wallet = await funded_wallet(ctx, "1")
    async with ctx.db.write() as conn:
        with pytest.raises(InsufficientBalance):
            await holds.place(conn, wallet, usd("2"), now=ctx.clock.now(), ttl=timedelta(60))
    async with ctx.db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(holds_table))).scalar()
    assert count == 0
    assert await balances(ctx, wallet) == funds("1", topped_up="1")
    assert await problems(ctx, wallet) == []


@pytest.mark.parametrize("amount", [0, -1])
async def test_place_rejects_non_positive_amounts(ctx, amount):
    wallet = await funded_wallet(ctx, "10")
    async with ctx.db.write() as conn:
        with pytest.raises(ValueError):
            await holds.place(conn, wallet, amount, now=ctx.clock.now(), ttl=timedelta(60))


async def test_settle_below_the_hold_releases_the_rest(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "5")
    assert await settle(ctx, hold, "1.25") == Settlement(
        entry_id=await settle_entry(ctx, hold),
        charged=usd("1.25"),
        uncollected=0,
        released=usd("5"),
    )
    assert await balances(ctx, wallet) == funds("8.75", spent="1.25")
    assert await hold_status(ctx, hold) == "settled"
    assert await problems(ctx, wallet) == []


async def test_settle_at_exactly_the_hold(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "5")
    assert await settle(ctx, hold, "5") == Settlement(
        entry_id=await settle_entry(ctx, hold), charged=usd("5"), uncollected=0, released=usd("5")
    )
    assert await balances(ctx, wallet) == funds("5", spent="5")
    assert await problems(ctx, wallet) == []


async def test_settle_of_zero_cost_returns_everything(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "5")
    assert await settle(ctx, hold, "0") == Settlement(
        entry_id=await settle_entry(ctx, hold), charged=0, uncollected=0, released=usd("5")
    )
    assert await balances(ctx, wallet) == funds("10")
    assert await problems(ctx, wallet) == []


async def test_settle_above_the_hold_takes_the_extra_from_available(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "4")
    assert await settle(ctx, hold, "7") == Settlement(
        entry_id=await settle_entry(ctx, hold), charged=usd("7"), uncollected=0, released=usd("4")
    )
    assert await balances(ctx, wallet) == funds("3", spent="7")
    assert await problems(ctx, wallet) == []


async def test_settle_beyond_the_wallet_records_the_uncollected_rest(ctx):
    wallet = await funded_wallet(ctx, "10")
    other = await place(ctx, wallet, "3")  # money held for another request is not taken
    hold = await place(ctx, wallet, "4")
    result = await settle(ctx, hold, "15")
    assert result == Settlement(
        entry_id=await settle_entry(ctx, hold),
        charged=usd("7"),
        uncollected=usd("8"),
        released=usd("4"),
    )
    assert await balances(ctx, wallet) == funds("0", held="3", spent="7")
    async with ctx.db.read() as conn:
        e = ledger_entries.c
        memo = (
            await conn.execute(sa.select(e.memo).where(e.hold_id == hold, e.kind == "settle"))
        ).scalar_one()
    assert memo == f"uncollected {usd('8')} micros"
    assert await problems(ctx, wallet) == []
    assert await settle(ctx, other, "3") == Settlement(
        entry_id=await settle_entry(ctx, other), charged=usd("3"), uncollected=0, released=usd("3")
    )
    assert await balances(ctx, wallet) == funds("0", spent="10")
    assert await problems(ctx, wallet) == []


async def test_settling_twice_is_refused_and_charges_once(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "5")
    await settle(ctx, hold, "2")
    with pytest.raises(HoldClosed):
        await settle(ctx, hold, "2")
    assert await balances(ctx, wallet) == funds("8", spent="2")
    assert await problems(ctx, wallet) == []


async def test_concurrent_settles_of_one_hold_charge_once(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "5")
    results = await asyncio.gather(
        *(settle(ctx, hold, "3") for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, Settlement) for r in results) == 1
    assert sum(isinstance(r, HoldClosed) for r in results) == 4
    assert await balances(ctx, wallet) == funds("7", spent="3")
    assert await problems(ctx, wallet) == []


async def test_release_returns_the_whole_hold_once(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "5")
    assert await release(ctx, hold) is True
    assert await release(ctx, hold) is False
    assert await balances(ctx, wallet) == funds("10")
    with pytest.raises(HoldClosed):
        await settle(ctx, hold, "1")
    assert await balances(ctx, wallet) == funds("10")
    assert await hold_status(ctx, hold) == "released"
    assert await problems(ctx, wallet) == []


async def test_a_settled_hold_cannot_be_released(ctx):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "5")
    await settle(ctx, hold, "1")
    assert await release(ctx, hold) is False
    assert await balances(ctx, wallet) == funds("9", spent="1")
    assert await problems(ctx, wallet) == []


async def test_expiry_returns_stranded_money_after_the_ttl(ctx, clock):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "4", ttl=timedelta(minutes=10))
    clock.advance(minutes=9, seconds=59)
    assert await sweeper.sweep_once(ctx) == 0
    assert await balances(ctx, wallet) == funds("6", held="4")
    clock.advance(seconds=1)
    assert await sweeper.sweep_once(ctx) == 1
    assert await sweeper.sweep_once(ctx) == 0
    assert await balances(ctx, wallet) == funds("10")
    assert await hold_status(ctx, hold) == "expired"
    assert await entry_kinds(ctx, wallet) == ["topup", "hold", "expire"]
    assert await problems(ctx, wallet) == []


async def test_expire_due_only_touches_due_pending_holds(ctx, clock):
    wallet = await funded_wallet(ctx, "10")
    short = await place(ctx, wallet, "1", ttl=timedelta(minutes=1))
    settled = await place(ctx, wallet, "2", ttl=timedelta(minutes=1))
    long = await place(ctx, wallet, "3", ttl=timedelta(hours=1))
    await settle(ctx, settled, "2")
    clock.advance(minutes=5)
    async with ctx.db.write() as conn:
        assert await holds.expire_due(conn, now=clock.now()) == 1
    assert [await hold_status(ctx, h) for h in (short, settled, long)] == [
        "expired",
        "settled",
        "pending",
    ]
    assert await balances(ctx, wallet) == funds("5", held="3", spent="2")
    assert await problems(ctx, wallet) == []


async def test_settling_an_expired_hold_charges_from_available_once(ctx, clock):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "4", ttl=timedelta(minutes=1))
    clock.advance(minutes=2)
    assert await sweeper.sweep_once(ctx) == 1
    assert await settle(ctx, hold, "3") == Settlement(
        entry_id=await settle_entry(ctx, hold), charged=usd("3"), uncollected=0, released=0
    )
    assert await balances(ctx, wallet) == funds("7", spent="3")
    with pytest.raises(HoldClosed):
        await settle(ctx, hold, "3")
    assert await balances(ctx, wallet) == funds("7", spent="3")
    assert await problems(ctx, wallet) == []


async def test_settling_an_expired_hold_on_an_empty_wallet_records_it_uncollected(ctx, clock):
    wallet = await funded_wallet(ctx, "4")
    hold = await place(ctx, wallet, "4", ttl=timedelta(minutes=1))
    clock.advance(minutes=2)
    await sweeper.sweep_once(ctx)
    await place(ctx, wallet, "4")  # the returned money is reserved again by another request
    assert await settle(ctx, hold, "1") == Settlement(
        entry_id=await settle_entry(ctx, hold), charged=0, uncollected=usd("1"), released=0
    )
    async with ctx.db.read() as conn:
        e = ledger_entries.c
        memos = (
            await conn.execute(sa.select(e.memo).where(e.hold_id == hold, e.kind == "settle"))
        ).scalars()
        assert list(memos) == [f"uncollected {usd('1')} micros"]
    assert await hold_status(ctx, hold) == "settled"
    assert await balances(ctx, wallet) == funds("0", held="4", topped_up="4")
    assert await problems(ctx, wallet) == []


async def test_a_settle_racing_the_sweeper_applies_once(ctx, clock):
    wallet = await funded_wallet(ctx, "10")
    hold = await place(ctx, wallet, "4", ttl=timedelta(minutes=1))
    clock.advance(minutes=2)
    results = await asyncio.gather(settle(ctx, hold, "1"), sweeper.sweep_once(ctx))
    assert await hold_status(ctx, hold) == "settled"
    available = funds("9", spent="1")
    assert await balances(ctx, wallet) == available, results
    assert await problems(ctx, wallet) == []
