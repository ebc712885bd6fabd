"""Shared by the money tests: a funded wallet, its balances and the ledger invariant."""

from __future__ import annotations

from datetime import timedelta

from bytespike.billing import holds, ledger
from bytespike.billing.ledger import Balances
from bytespike.context import Context
from bytespike.money import parse_usd
from tests.factories import make_user, top_up, wallet_of

TTL = timedelta(minutes=10)


def usd(text: str) -> int:
    return parse_usd(text)


async def funded_wallet(ctx: Context, amount: str, username: str = "ada") -> int:
    """An individual user's wallet holding `amount` USD."""
    await make_user(ctx, username)
    if usd(amount):
        await top_up(ctx, amount, user=username)
    return await wallet_of(ctx, user=username)


async def balances(ctx: Context, wallet_id: int) -> Balances:
    async with ctx.db.read() as conn:
        return await ledger.balances(conn, wallet_id)


async def problems(ctx: Context, wallet_id: int) -> list[str]:
    async with ctx.db.read() as conn:
        return await ledger.verify(conn, wallet_id)


async def place(ctx: Context, wallet_id: int, amount: str, ttl: timedelta = TTL) -> int:
    """One hold in its own transaction, as a request would place it."""
    async with ctx.db.write() as conn:
        placed = await holds.place(conn, wallet_id, usd(amount), now=ctx.clock.now(), ttl=ttl)
        return placed.hold_id


async def settle(ctx: Context, hold_id: int, cost: str) -> holds.Settlement:
    async with ctx.db.write() as conn:
        return await holds.settle(conn, hold_id, usd(cost), now=ctx.clock.now())


async def release(ctx: Context, hold_id: int) -> bool:
    async with ctx.db.write() as conn:
        return await holds.release(conn, hold_id, now=ctx.clock.now())
