"""PostgreSQL's one-statement reserve and settle (billing/fused.py): they book exactly what
the general path books, write nothing when they cannot do all of it, and a batch that mixes
them with the general path still keeps the books."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from bytespike.billing import ledger, metering, pricing, wallets
from bytespike.billing.fused import RESERVE_MANY
from bytespike.billing.metering import HoldRequest, Outcome, Ticket
from bytespike.catalog import Model
from bytespike.context import Context
from bytespike.db.batch import Fused, GroupCommit
from bytespike.db.direct import Many, PgDirect, Plans
from bytespike.errors import InsufficientBalance
from bytespike.keys import service as keys
from bytespike.money import parse_usd, to_usd_text
from bytespike.orgs import service as orgs
from bytespike.upstream.base import Usage
from bytespike.webhooks import events
from bytespike.webhooks.tables import webhook_events
from tests.conftest import FakeClock
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.integration.fused_support import account, record_runs
from tests.integration.webhooks_support import subscribed
from tests.usage_support import assert_rollups_match

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)

# Every class a receipt keeps, so the fused settle is seen to record each as the general one.
USAGE = Usage(
    input_tokens=1_200,
    output_tokens=345,
    cached_tokens=100,
    cache_write_tokens=50,
    cache_write_1h_tokens=20,
    reasoning_tokens=40,
)
OUTCOME = Outcome(status="ok", http_status=200, stream=False, latency_ms=42, provider="openai")


def model(ctx: Context) -> Model:
    found = ctx.catalog.get("gpt-5-4")
    assert found is not None
    return found


def request(ctx: Context, key_id: int, wallet_id: int, max_tokens: int | None) -> HoldRequest:
    return HoldRequest(
        key_id=key_id,
        wallet_id=wallet_id,
        model=model(ctx),
        quota_reset=None,
        capped=False,
        input_tokens=2_000,
        max_tokens=max_tokens,
        now=ctx.clock.now(),
        ttl=timedelta(minutes=10),
    )


async def run_fused(ctx: Context, fused: Fused[Any] | None) -> Any:
    """The statement alone, as a batch of one runs it; its value (None: it wrote nothing)."""
    assert fused is not None
    async with ctx.db.batch() as (_conn, raw):
        direct = PgDirect(raw, Plans(ctx.db.dialect))
        (value,) = await direct.values(fused.statement, [fused.params])
        return value


async def general(ctx: Context, op: Any) -> Any:
    async with ctx.db.write() as conn:
        return await op(conn)


async def books(ctx: Context, wallet_id: int) -> dict[str, Sequence[Any]]:
    """Everything a call leaves behind in a wallet, without ids and owners."""
    async with ctx.db.read() as conn:
        wallet = await conn.execute(
            sa.text(
                "SELECT available_micros, held_micros, spent_micros, topped_up_micros,"
                " adjusted_micros, low_balance_armed FROM wallets WHERE id = :w"
            ),
            {"w": wallet_id},
        )
        entries = await conn.execute(
            sa.text(
                "SELECT kind, d_available, d_held, d_spent, d_topped_up, d_adjusted, model,"
                " memo, hold_id IS NOT NULL, key_id IS NOT NULL, created_at"
                " FROM ledger_entries WHERE wallet_id = :w ORDER BY id"
            ),
            {"w": wallet_id},
        )
        held = await conn.execute(
            sa.text(
                "SELECT model, amount_micros, status, created_at, expires_at, closed_at"
                " FROM holds WHERE wallet_id = :w ORDER BY id"
            ),
            {"w": wallet_id},
        )
        usage = await conn.execute(
            sa.text(
                "SELECT model, provider, input_tokens, output_tokens, cached_tokens,"
                " cost_micros, status, http_status, stream, latency_ms, created_at,"
                " cache_write_tokens, cache_write_1h_tokens, reasoning_tokens,"
                " tool_prompt_tokens, web_search_requests, price_period, price_tier,"
                " unit_prices, hold_id IS NOT NULL,"
                # The kinds of the entries it names, if they are its hold's (receipts.py).
                " (SELECT kind FROM ledger_entries e WHERE e.id = u.hold_entry_id"
                "  AND e.hold_id = u.hold_id),"
                " (SELECT kind FROM ledger_entries e WHERE e.id = u.settle_entry_id"
                "  AND e.hold_id = u.hold_id)"
                " FROM usage_records u WHERE wallet_id = :w ORDER BY id"
            ),
            {"w": wallet_id},
        )
        daily = await conn.execute(
            sa.text(
                "SELECT day, model, requests, input_tokens, output_tokens, cached_tokens,"
                " cost_micros, last_at FROM usage_daily WHERE wallet_id = :w ORDER BY day, model"
            ),
            {"w": wallet_id},
        )
        return {
            "wallet": [tuple(r) for r in wallet],
            "entries": [tuple(r) for r in entries],
            "holds": [tuple(r) for r in held],
            "usage": [tuple(r) for r in usage],
            "daily": [tuple(r) for r in daily],
        }


@pytest.mark.parametrize("max_tokens", [None, 700])
async def test_a_fused_call_books_exactly_what_the_general_path_books(
    ctx: Context, max_tokens: int | None
) -> None:
    fast_key, fast_wallet = await account(ctx, "ada", "25")
    slow_key, slow_wallet = await account(ctx, "bob", "25")

    fast_req = request(ctx, fast_key, fast_wallet, max_tokens)
    reserve = metering.fused_reserve(fast_req)
    hold_id = await run_fused(ctx, reserve)
    assert hold_id is not None, "the fused reserve did not place the hold"
    assert reserve is not None
    fast_ticket = metering.ticket_or_raise(reserve.result(hold_id))
    slow_req = request(ctx, slow_key, slow_wallet, max_tokens)
    slow_ticket = metering.ticket_or_raise(
        await general(ctx, lambda conn: metering.reserve(conn, slow_req))
    )
    assert (fast_ticket.amount, fast_ticket.max_tokens) == (
        slow_ticket.amount,
        slow_ticket.max_tokens,
    )
    assert (await books(ctx, fast_wallet)) == (await books(ctx, slow_wallet))

    now = ctx.clock.now() + timedelta(seconds=3)
    settle = metering.fused_settle(fast_ticket, USAGE, OUTCOME, now=now)
    assert await run_fused(ctx, settle) is not None, "the fused settle did not settle"
    assert settle is not None and settle.result(fast_wallet) > 0
    charged = await general(
        ctx, lambda conn: metering.settle(conn, slow_ticket, USAGE, OUTCOME, now=now)
    )
    assert settle.result(fast_wallet) == charged
    fast, slow = await books(ctx, fast_wallet), await books(ctx, slow_wallet)
    assert fast == slow
    assert [e[0] for e in fast["entries"]] == ["topup", "hold", "settle"]
    assert fast["usage"][0][-2:] == ("hold", "settle")  # the record names its hold's entries
    assert len(fast["daily"]) == 1 and fast["daily"][0][2] == 1  # one call on its day's row
    await assert_rollups_match(ctx)
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, fast_wallet) == []


async def counts(ctx: Context) -> tuple[int, ...]:
    async with ctx.db.read() as conn:
        row = await conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM holds), (SELECT count(*) FROM ledger_entries),"
                " (SELECT count(*) FROM usage_records),"
                " (SELECT sum(available_micros) FROM wallets),"
                " (SELECT count(*) FROM holds WHERE status = 'pending')"
            )
        )
        return tuple(row.one())


async def test_a_fused_reserve_that_cannot_place_its_hold_writes_nothing(ctx: Context) -> None:
    # 4 USD, under the default 5 USD threshold, on a wallet that was never paged: armed, so
    # its next debit pages, and that page is the general path's.
    key_id, wallet_id = await account(ctx, "ada", "4")
    poor_key, poor_wallet = await account(ctx, "bob", "0.01")
    revoked_key, revoked_wallet = await account(ctx, "cy", "25")
    await keys.revoke(ctx, revoked_key)
    await make_org(ctx, "Paused")
    await make_user(ctx, "dee", tier="enterprise")
    await add_member(ctx, "Paused", "dee", role="owner")
    await top_up(ctx, "25", org="Paused")
    paused_key = (await make_key(ctx, "dee", org="Paused"))["id"]
    paused_wallet = await wallet_of(ctx, org="Paused")
    await orgs.set_paused(ctx, org="Paused", paused=True)

    before = await counts(ctx)
    for key, wallet in [
        (poor_key, poor_wallet),
        (revoked_key, revoked_wallet),
        (paused_key, paused_wallet),
        (key_id, wallet_id),
    ]:
        assert await run_fused(ctx, metering.fused_reserve(request(ctx, key, wallet, None))) is None
    assert await counts(ctx) == before

    # The general path takes the last from there: it places the hold and pages the owner
    # (the alert disarms until money comes in).
    ticket = metering.ticket_or_raise(
        await general(
            ctx, lambda conn: metering.reserve(conn, request(ctx, key_id, wallet_id, None))
        )
    )
    assert ticket.amount > 0
    async with ctx.db.read() as conn:
        armed = await conn.execute(
            sa.text("SELECT low_balance_armed FROM wallets WHERE id = :w"), {"w": wallet_id}
        )
        assert armed.scalar_one() is False


async def set_threshold(ctx: Context, wallet_id: int, micros: int) -> None:
    async with ctx.db.write() as conn:
        await wallets.set_threshold(conn, wallet_id, micros, now=ctx.clock.now())


async def pages(ctx: Context, wallet_id: int) -> int:
    """Low-balance pages the wallet's owner was sent."""
    async with ctx.db.read() as conn:
        e = webhook_events.c
        query = sa.select(sa.func.count()).where(
            e.wallet_id == wallet_id, e.type == events.BALANCE_LOW
        )
        return int((await conn.execute(query)).scalar_one())


async def listening(ctx: Context, username: str, usd: str) -> tuple[int, int]:
    """`account`, with an endpoint subscribed to low-balance pages (so they are stored)."""
    return await subscribed(ctx, username, usd, events.BALANCE_LOW)


async def test_a_fused_hold_dipping_under_the_threshold_pages_nobody_like_the_general_path(
    ctx: Context,
) -> None:
    """A hold leaves settled money (available + held) as it is: with the threshold just under
    it, the fused reserve places the hold that takes `available` far below, as the general
    path does, and neither pages; nor do the releases."""
    fast_key, fast_wallet = await listening(ctx, "ada", "25")
    slow_key, slow_wallet = await listening(ctx, "bob", "25")
    for wallet_id in (fast_wallet, slow_wallet):
        await set_threshold(ctx, wallet_id, parse_usd("24.99"))

    reserve = metering.fused_reserve(request(ctx, fast_key, fast_wallet, None))
    hold_id = await run_fused(ctx, reserve)
    assert hold_id is not None, (
        "the fused reserve left a hold that pages nobody to the general path"
    )
    assert reserve is not None
    fast = metering.ticket_or_raise(reserve.result(hold_id))
    slow = metering.ticket_or_raise(
        await general(
            ctx, lambda conn: metering.reserve(conn, request(ctx, slow_key, slow_wallet, None))
        )
    )
    assert (await books(ctx, fast_wallet)) == (await books(ctx, slow_wallet))
    for ticket in (fast, slow):
        await general(
            ctx,
            lambda conn, t=ticket: metering.settle(conn, t, None, OUTCOME, now=ctx.clock.now()),
        )
    assert (await books(ctx, fast_wallet)) == (await books(ctx, slow_wallet))
    assert (await pages(ctx, fast_wallet), await pages(ctx, slow_wallet)) == (0, 0)
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, fast_wallet) == []
        assert await ledger.verify(conn, slow_wallet) == []


@pytest.mark.parametrize("crossing", [True, False], ids=["crossing", "above"])
async def test_a_fused_settle_leaves_a_charge_that_pages_to_the_general_path(
    ctx: Context, crossing: bool
) -> None:
    """A charge that leaves settled money at or below an armed threshold pages: the fused
    settle writes nothing and returns NULL, the general path settles and pages, once. One
    micro more of room and the fused settle does it all, paging nobody. Either way the books
    are the general path's, page included."""
    fast_key, fast_wallet = await listening(ctx, "ada", "25")
    slow_key, slow_wallet = await listening(ctx, "bob", "25")
    cost = pricing.charge(model(ctx), USAGE)
    threshold = parse_usd("25") - cost - (0 if crossing else 1)
    tickets = []
    for key_id, wallet_id in ((fast_key, fast_wallet), (slow_key, slow_wallet)):
        await set_threshold(ctx, wallet_id, threshold)
        req = request(ctx, key_id, wallet_id, 700)
        tickets.append(
            metering.ticket_or_raise(
                await general(ctx, lambda conn, r=req: metering.reserve(conn, r))
            )
        )
    fast, slow = tickets
    now = ctx.clock.now() + timedelta(seconds=3)

    before = await counts(ctx)
    settle = metering.fused_settle(fast, USAGE, OUTCOME, now=now)
    settled = await run_fused(ctx, settle)
    if crossing:
        assert settled is None, "the fused settle charged what pages the owner"
        assert await counts(ctx) == before
        # As a batch runs it: the statement again, then the general path, which settles and
        # pages.
        writes = GroupCommit(ctx.db)
        try:
            await writes.run(
                lambda conn: metering.settle(conn, fast, USAGE, OUTCOME, now=now),
                order=fast_wallet,
                fused=settle,
            )
        finally:
            await writes.close()
    else:
        assert settled is not None, "the fused settle left a charge that pages nobody"
    await general(ctx, lambda conn: metering.settle(conn, slow, USAGE, OUTCOME, now=now))

    fast_books, slow_books = await books(ctx, fast_wallet), await books(ctx, slow_wallet)
    assert fast_books == slow_books
    assert fast_books["wallet"][0][-1] is not crossing  # low_balance_armed
    expected = 1 if crossing else 0
    assert (await pages(ctx, fast_wallet), await pages(ctx, slow_wallet)) == (expected, expected)
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, fast_wallet) == []
        assert await ledger.verify(conn, slow_wallet) == []


async def test_a_fused_settle_that_cannot_settle_writes_nothing(ctx: Context) -> None:
    key_id, wallet_id = await account(ctx, "ada", "25")
    ticket = metering.ticket_or_raise(
        await general(ctx, lambda conn: metering.reserve(conn, request(ctx, key_id, wallet_id, 10)))
    )
    huge = Usage(input_tokens=500_000, output_tokens=0)
    assert metering.fused_settle(ticket, huge, OUTCOME, now=ctx.clock.now()) is None
    assert metering.fused_settle(ticket, None, OUTCOME, now=ctx.clock.now()) is None

    small = Usage(input_tokens=10, output_tokens=2)
    await general(
        ctx, lambda conn: metering.settle(conn, ticket, small, OUTCOME, now=ctx.clock.now())
    )
    before = await counts(ctx)
    again = metering.fused_settle(ticket, small, OUTCOME, now=ctx.clock.now())
    assert await run_fused(ctx, again) is None  # already settled: no second charge
    assert await counts(ctx) == before


async def test_a_batch_of_fused_and_general_operations_never_overdraws(ctx: Context) -> None:
    """60 calls at once on a wallet that covers a few at the most they may cost: fused holds
    while the money lasts, then general ones that lower the output budget, then 402s."""
    await make_user(ctx, "ada")
    key_id, wallet_id = (await make_key(ctx, "ada"))["id"], await wallet_of(ctx, user="ada")
    req = request(ctx, key_id, wallet_id, None)
    most = metering.fused_reserve(req)
    assert most is not None
    full = most.params["amount"]
    funds = full * 7 // 2  # three holds at the most, then smaller ones
    await top_up(ctx, to_usd_text(funds), user="ada")
    writes = GroupCommit(ctx.db)

    async def place(conn: Any) -> metering.Reservation:
        return await metering.reserve(conn, req)

    try:
        results = await asyncio.gather(
            *(
                writes.run(place, order=wallet_id, fused=metering.fused_reserve(req))
                for _ in range(60)
            ),
            return_exceptions=True,
        )
        tickets = [r for r in results if isinstance(r, Ticket)]
        refused = [r for r in results if isinstance(r, InsufficientBalance)]
        assert len(tickets) + len(refused) == 60, [
            r for r in results if not isinstance(r, (Ticket, InsufficientBalance))
        ]
        assert any(t.amount == full for t in tickets)  # fused
        assert any(t.amount < full for t in tickets)  # general, a smaller budget
        assert refused

        settled = await asyncio.gather(
            *(
                writes.run(
                    lambda conn, t=t: metering.settle(conn, t, USAGE, OUTCOME, now=ctx.clock.now()),
                    order=wallet_id,
                    fused=metering.fused_settle(t, USAGE, OUTCOME, now=ctx.clock.now()),
                )
                for t in tickets
            )
        )
    finally:
        await writes.close()
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet_id) == []
        after = await ledger.balances(conn, wallet_id)
    assert after.held == 0 and after.available >= 0
    assert after.spent == sum(settled) <= funds
    await assert_rollups_match(ctx)


async def test_fused_and_general_settlements_add_up_on_each_days_rollup_row(
    ctx: Context, clock: FakeClock
) -> None:
    """Calls of one key and model on one UTC day share a row, whichever path settled them
    (the fused statement's upsert finds the general path's row and the other way round);
    the first call after midnight starts the next day's row."""
    key_id, wallet_id = await account(ctx, "ada", "25")
    writes = GroupCommit(ctx.db)

    async def call(fused_path: bool, usage: Usage) -> None:
        ticket = metering.ticket_or_raise(
            await general(
                ctx, lambda conn: metering.reserve(conn, request(ctx, key_id, wallet_id, 700))
            )
        )
        now = ctx.clock.now()
        if fused_path:
            assert await run_fused(ctx, metering.fused_settle(ticket, usage, OUTCOME, now=now))
        else:
            await writes.run(lambda conn: metering.settle(conn, ticket, usage, OUTCOME, now=now))

    try:
        clock.advance(hours=11, minutes=59)
        await call(True, USAGE)
        await call(False, Usage(input_tokens=10, output_tokens=1))
        await call(True, USAGE)
        await call(False, None)  # no usage: counted, nothing charged
        clock.advance(minutes=2)
        await call(True, USAGE)
    finally:
        await writes.close()
    rows = (await books(ctx, wallet_id))["daily"]
    assert [(str(day), requests) for day, _, requests, *_ in rows] == [
        ("2026-03-10", 4),
        ("2026-03-11", 1),
    ]
    cost = pricing.charge(model(ctx), USAGE)
    small = pricing.charge(model(ctx), Usage(input_tokens=10, output_tokens=1))
    assert rows[0][3:7] == (2 * 1_200 + 10, 2 * 345 + 1, 2 * 100, 2 * cost + small)
    await assert_rollups_match(ctx)
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet_id) == []


@pytest.mark.parametrize("usage", [USAGE, None], ids=["charged", "released"])
async def test_a_settlement_run_again_after_its_commit_changes_nothing(
    ctx: Context, usage: Usage | None
) -> None:
    """A batch whose commit went through but whose acknowledgement was lost is run again, an
    operation at a time (db/batch.py): the settlement finds its call settled and recorded,
    and answers what it charged then, without a second charge or record."""
    key_id, wallet_id = await account(ctx, "ada", "25")
    req = request(ctx, key_id, wallet_id, 700)
    ticket = metering.ticket_or_raise(await general(ctx, lambda c: metering.reserve(c, req)))
    now = ctx.clock.now()

    async def settle(conn: Any) -> int:
        return await metering.settle(conn, ticket, usage, OUTCOME, now=now)

    first = await general(ctx, settle)
    before = await books(ctx, wallet_id)
    again = await general(ctx, settle)

    assert again == first == (0 if usage is None else pricing.charge(model(ctx), USAGE))
    assert await books(ctx, wallet_id) == before
    assert len(before["usage"]) == 1
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet_id) == []


# A run of fused operations as one statement (billing/fused.py's RESERVE_MANY, SETTLE_MANY).


async def run_many(ctx: Context, ops: Sequence[Fused[Any] | None]) -> list[Any]:
    """The run's statement over all of `ops` at once, as a batch runs consecutive fused
    operations: one value per operation (None: it did nothing for that one)."""
    present = [op for op in ops if op is not None]
    assert len(present) == len(ops) and present[0].many is not None
    many = present[0].many
    async with ctx.db.batch() as (_conn, raw):
        direct = PgDirect(raw, Plans(ctx.db.dialect))
        return await direct.many(many, [op.params for op in present])


async def test_a_runs_json_argument_reads_back_as_the_values_themselves(ctx: Context) -> None:
    """A run's calls go to PostgreSQL as one JSON text (`Many.arguments`); read back there,
    each value is the one given: 64-bit integers at both ends, microseconds and offsets,
    a naive datetime as UTC (as asyncpg takes one), a date, text with quotes, a backslash
    and non-ASCII letters, booleans and NULL, in the calls' order."""
    columns = ("big", "at", "naive", "day", "note", "flag", "missing")
    many = Many(
        "SELECT big, at, naive, day, note, flag, missing FROM json_to_recordset($1::json)"
        " AS i(ord int8, big int8, at timestamptz, naive timestamptz, day date, note text,"
        " flag bool, missing int8) ORDER BY ord",
        columns,
    )
    at = datetime(2026, 11, 28, 3, 4, 5, 678901, tzinfo=UTC)
    india = timezone(timedelta(hours=5, minutes=30))
    given = [
        (
            2**63 - 1,
            at,
            at.replace(tzinfo=None),
            at.date(),
            'a "quote", \\ and ünïcødé',
            True,
            None,
        ),
        (-(2**63), at.astimezone(india), at.replace(tzinfo=None), date(1999, 12, 31), "", False, 7),
        (
            0,
            at.replace(microsecond=0),
            at.replace(microsecond=1, tzinfo=None),
            at.date(),
            "{}",
            True,
            0,
        ),
    ]
    params = [dict(zip(columns, values, strict=True)) for values in given]
    async with ctx.db.batch() as (_conn, raw), raw.transaction():
        # Not the server's UTC: a naive datetime must not be read in the session's zone.
        await raw.execute("SET LOCAL TIME ZONE 'Asia/Kolkata'")
        rows = await raw.fetch(many.sql, *many.arguments(params))
    assert [tuple(row) for row in rows] == [
        (big, when, naive.replace(tzinfo=UTC), day, note, flag, missing)
        for big, when, naive, day, note, flag, missing in given
    ]


async def test_a_run_of_calls_in_one_statement_books_what_a_statement_each_books(
    ctx: Context,
) -> None:
    """Five calls on one wallet reserved and settled in one statement each way leave the
    same rows, movements, receipts and balances as the same calls one statement each."""
    fast_key, fast_wallet = await account(ctx, "ada", "25")
    slow_key, slow_wallet = await account(ctx, "bob", "25")
    budgets = [None, 700, 10, 700, 3_000]

    fast_reserves = [
        metering.fused_reserve(request(ctx, fast_key, fast_wallet, m)) for m in budgets
    ]
    placed = await run_many(ctx, fast_reserves)  # [hold id, its entry's id] each
    assert None not in placed and len({tuple(ids) for ids in placed}) == 5
    fast = [
        metering.ticket_or_raise(r.result(ids))
        for r, ids in zip(fast_reserves, placed, strict=True)
        if r
    ]
    slow = []
    for budget in budgets:
        reserve = metering.fused_reserve(request(ctx, slow_key, slow_wallet, budget))
        assert reserve is not None
        slow.append(metering.ticket_or_raise(reserve.result(await run_fused(ctx, reserve))))
    assert [t.amount for t in fast] == [t.amount for t in slow]
    assert (await books(ctx, fast_wallet)) == (await books(ctx, slow_wallet))

    usages = [  # by budget: what each call's hold covers
        USAGE,
        USAGE,
        Usage(input_tokens=10, output_tokens=1),
        Usage(input_tokens=0, output_tokens=0),
        USAGE,
    ]
    now = ctx.clock.now() + timedelta(seconds=3)
    settles = [
        metering.fused_settle(t, u, OUTCOME, now=now) for t, u in zip(fast, usages, strict=True)
    ]
    assert await run_many(ctx, settles) == [fast_wallet] * 5
    for ticket, usage in zip(slow, usages, strict=True):
        assert await run_fused(ctx, metering.fused_settle(ticket, usage, OUTCOME, now=now))
    fast_books, slow_books = await books(ctx, fast_wallet), await books(ctx, slow_wallet)
    assert len(fast_books["daily"]) == 1  # the day's rollup row, counting all five
    assert fast_books == slow_books
    assert [e[0] for e in fast_books["entries"]] == ["topup"] + ["hold"] * 5 + ["settle"] * 5
    assert [u[-2:] for u in fast_books["usage"]] == [("hold", "settle")] * 5
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, fast_wallet) == []
        assert await ledger.verify(conn, slow_wallet) == []


async def test_a_run_of_reserves_holds_each_call_on_its_own_conditions(ctx: Context) -> None:
    """One statement for calls of several wallets: each wallet's holds are placed in order
    while its money lasts; a revoked key's call, or one whose wallet would page its owner,
    gets nothing and takes nothing from the calls after it; the other wallets go on."""
    await make_user(ctx, "ada")
    ada_key, ada_wallet = (await make_key(ctx, "ada"))["id"], await wallet_of(ctx, user="ada")
    revoked = (await make_key(ctx, "ada"))["id"]
    await keys.revoke(ctx, revoked)
    full = metering.fused_reserve(request(ctx, ada_key, ada_wallet, None))
    assert full is not None
    amount = full.params["amount"]
    await top_up(ctx, to_usd_text(amount * 7 // 2), user="ada")  # three holds and a half
    bob_key, bob_wallet = await account(ctx, "bob", "25")
    # 4 USD, under the default 5 USD threshold, never paged: armed, its next debit pages.
    cy_key, cy_wallet = await account(ctx, "cy", "4")

    calls = [
        (ada_key, ada_wallet),
        (bob_key, bob_wallet),
        (ada_key, ada_wallet),
        (revoked, ada_wallet),
        (cy_key, cy_wallet),
        (ada_key, ada_wallet),
        (ada_key, ada_wallet),
        (bob_key, bob_wallet),
    ]
    before = await counts(ctx)
    held = await run_many(ctx, [metering.fused_reserve(request(ctx, k, w, None)) for k, w in calls])
    assert [h is not None for h in held] == [True, True, True, False, False, True, False, True]
    async with ctx.db.read() as conn:
        ada = await ledger.balances(conn, ada_wallet)
        cy = await ledger.balances(conn, cy_wallet)
        for wallet in (ada_wallet, bob_wallet, cy_wallet):
            assert await ledger.verify(conn, wallet) == []
    assert (ada.held, ada.available) == (3 * amount, amount // 2)
    assert (cy.held, cy.available) == (0, parse_usd("4"))
    holds, entries, *_ = await counts(ctx)
    assert (holds, entries) == (before[0] + 5, before[1] + 5)
    assert (await pages(ctx, cy_wallet)) == 0  # the general path's to send


async def test_a_run_of_settles_charges_each_call_on_its_own_conditions(ctx: Context) -> None:
    """One statement for five settlements of a wallet: a hold named twice is settled once, a
    cost beyond its hold is left alone, and once the charges so far would leave settled
    money at the armed threshold, that charge and the later ones are left to the general
    path, which settles them and pages the owner once."""
    key_id, wallet_id = await listening(ctx, "ada", "25")
    tickets = []
    for _ in range(4):
        req = request(ctx, key_id, wallet_id, 700)
        tickets.append(
            metering.ticket_or_raise(await general(ctx, lambda c, r=req: metering.reserve(c, r)))
        )
    cost = pricing.charge(model(ctx), USAGE)
    # Two charges leave settled money above the threshold, a third would not.
    await set_threshold(ctx, wallet_id, parse_usd("25") - 3 * cost)
    now = ctx.clock.now() + timedelta(seconds=3)
    settles = [metering.fused_settle(t, USAGE, OUTCOME, now=now) for t in tickets]
    first, second, third, fourth = settles
    assert first and second and third and fourth
    beyond = Fused(
        second.statement,
        {**second.params, "cost": tickets[1].amount + 1},
        second.result,
        many=second.many,
    )
    run = [first, beyond, first, third, fourth, second]
    assert await run_many(ctx, run) == [wallet_id, None, None, wallet_id, None, None]
    async with ctx.db.read() as conn:
        after = await ledger.balances(conn, wallet_id)
        assert await ledger.verify(conn, wallet_id) == []
    assert after.spent == 2 * cost and (await pages(ctx, wallet_id)) == 0

    # The general path takes the rest from there, as a batch would: one page.
    for ticket in (tickets[1], tickets[3]):
        await general(ctx, lambda c, t=ticket: metering.settle(c, t, USAGE, OUTCOME, now=now))
    async with ctx.db.read() as conn:
        after = await ledger.balances(conn, wallet_id)
        assert await ledger.verify(conn, wallet_id) == []
    assert (after.spent, after.held) == (4 * cost, 0)
    assert (await pages(ctx, wallet_id)) == 1


async def test_a_batch_holds_several_wallets_in_one_statement_and_settles_them_in_another(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of reserves and settlements of three wallets, queued together, goes to
    PostgreSQL as two statements, not one or two per wallet, and books what it should."""
    runs = record_runs(monkeypatch)
    accounts = [await account(ctx, name, "25") for name in ("ada", "bob", "cy")]
    tickets = []
    for key_id, wallet_id in accounts:
        req = request(ctx, key_id, wallet_id, 700)
        tickets.append(
            metering.ticket_or_raise(await general(ctx, lambda c, r=req: metering.reserve(c, r)))
        )
    reqs = [request(ctx, key_id, wallet_id, 700) for key_id, wallet_id in accounts]
    now = ctx.clock.now() + timedelta(seconds=3)
    writes = GroupCommit(ctx.db)
    try:
        done = await asyncio.gather(
            *(
                writes.run(
                    lambda c, r=r: metering.reserve(c, r),
                    order=r.wallet_id,
                    fused=metering.fused_reserve(r),
                )
                for r in reqs
            ),
            *(
                writes.run(
                    lambda c, t=t: metering.settle(c, t, USAGE, OUTCOME, now=now),
                    order=t.wallet_id,
                    fused=metering.fused_settle(t, USAGE, OUTCOME, now=now),
                )
                for t in tickets
            ),
        )
    finally:
        await writes.close()
    kinds = sorted(
        ("reserve" if sql == RESERVE_MANY.sql else "settle", len(calls)) for sql, calls in runs
    )
    assert kinds == [("reserve", 3), ("settle", 3)]
    cost = pricing.charge(model(ctx), USAGE)
    assert done[3:] == [cost] * 3
    async with ctx.db.read() as conn:
        for (_key, wallet_id), held in zip(accounts, done[:3], strict=True):
            assert await ledger.verify(conn, wallet_id) == []
            after = await ledger.balances(conn, wallet_id)
            assert (after.spent, after.held) == (cost, metering.ticket_or_raise(held).amount)
    await assert_rollups_match(ctx)


async def test_two_replicas_batching_calls_of_shared_wallets_keep_the_books(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two group-commit writers (two replicas) each run many calls of the same three wallets
    at once: their runs lock wallets in one order, so neither deadlocks, no wallet is
    overdrawn, every call is held then settled once, and the books verify."""
    runs = record_runs(monkeypatch)
    accounts = [await account(ctx, name, "0.5") for name in ("ada", "bob", "cy")]
    replicas = [GroupCommit(ctx.db), GroupCommit(ctx.db)]

    async def call(n: int) -> int:
        key_id, wallet_id = accounts[n % 3]
        writes = replicas[n % 2]
        req = request(ctx, key_id, wallet_id, 700)
        try:
            ticket = metering.ticket_or_raise(
                await writes.run(
                    lambda c: metering.reserve(c, req),
                    order=wallet_id,
                    fused=metering.fused_reserve(req),
                )
            )
        except InsufficientBalance:
            return 0
        await asyncio.sleep(0)
        now = ctx.clock.now()
        return await writes.run(
            lambda c: metering.settle(c, ticket, USAGE, OUTCOME, now=now),
            order=wallet_id,
            fused=metering.fused_settle(ticket, USAGE, OUTCOME, now=now),
        )

    try:
        charged = await asyncio.gather(*(call(n) for n in range(240)))
    finally:
        for writes in replicas:
            await writes.close()
    assert max(len(calls) for _, calls in runs) > 1, (
        "no run of calls went to PostgreSQL as one statement"
    )
    wallets_held = [
        len({c["wallet"] for c in calls}) for sql, calls in runs if sql == RESERVE_MANY.sql
    ]
    assert max(wallets_held) > 1, "no run held the calls of several wallets"
    cost = pricing.charge(model(ctx), USAGE)
    assert set(charged) <= {0, cost} and cost in charged
    async with ctx.db.read() as conn:
        for _key, wallet_id in accounts:
            assert await ledger.verify(conn, wallet_id) == []
            after = await ledger.balances(conn, wallet_id)
            assert after.held == 0 and after.available >= 0
        spent = sum([(await ledger.balances(conn, w)).spent for _k, w in accounts])
    assert spent == sum(charged)
    await assert_rollups_match(ctx)
