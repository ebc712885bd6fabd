"""An operator's debit racing the calls of the same wallet (holds placed, settled under and
over their amount, released) never takes `available` below zero, on SQLite and PostgreSQL,
and the books verify afterwards, the wallet's and all of them."""

from __future__ import annotations

import asyncio

from bytespike.billing import service
from bytespike.context import Context
from bytespike.errors import InsufficientBalance, InvalidRequest
from tests.integration.ledger_support import (
    balances,
    funded_wallet,
    place,
    problems,
    release,
    settle,
    usd,
)


async def debit(ctx: Context, amount: str, n: int) -> bool:
    """One `credits adjust --usd=-AMOUNT`; False if refused for want of available money."""
    try:
        await service.adjust(ctx, amount=-usd(amount), reason=f"chargeback {n}", username="ada")
    except InvalidRequest as exc:
        assert exc.code == "insufficient_available", exc.message
        return False
    return True


async def test_debits_racing_the_last_dollars_never_overdraw(ctx: Context) -> None:
    """40 debits and 40 holds of 1 USD each at once on 20 USD: exactly 20 of them get it."""
    wallet = await funded_wallet(ctx, "20")

    async def hold(_: int) -> bool:
        try:
            await place(ctx, wallet, "1")
        except InsufficientBalance:
            return False
        return True

    won = await asyncio.gather(*(debit(ctx, "1", n) if n % 2 else hold(n) for n in range(80)))

    assert sum(won) == 20
    after = await balances(ctx, wallet)
    assert after.available == 0
    assert after.held - after.adjusted == usd("20")  # holds kept + debits made = the 20 USD
    assert await problems(ctx, wallet) == []
    assert (await service.verify(ctx))["ok"]


async def test_debits_racing_settlements_never_overdraw(ctx: Context) -> None:
    """150 calls (hold 1 USD, then settle at 0.60 or 1.20, or release) and 30 debits of 2 USD
    on 50 USD, all at once: more is asked for than there is, so some of each are refused."""
    wallet = await funded_wallet(ctx, "50")

    async def call(n: int) -> str:
        try:
            hold = await place(ctx, wallet, "1")
        except InsufficientBalance:
            return "refused"
        if n % 3 == 0:
            await release(ctx, hold)
        else:  # under the hold, or over it: the rest comes out of available as far as it goes
            await settle(ctx, hold, "0.6" if n % 3 == 1 else "1.2")
        return "called"

    async def debit_outcome(n: int) -> str:
        return "debited" if await debit(ctx, "2", n) else "debit refused"

    # A debit after every five calls, from the first moment to the last.
    outcomes = await asyncio.gather(
        *(debit_outcome(n) if n % 6 == 5 else call(n) for n in range(180))
    )

    debited = outcomes.count("debited")
    assert debited > 0 and outcomes.count("debit refused") > 0
    after = await balances(ctx, wallet)
    assert after.held == 0 and after.available >= 0
    assert after.adjusted == -usd("2") * debited
    assert after.available == usd("50") - after.spent - usd("2") * debited
    assert await problems(ctx, wallet) == []
    assert (await service.verify(ctx))["ok"]
