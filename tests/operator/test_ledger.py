"""`ledger entries` and `ledger verify` (GET /api/v1/admin/ledger/...): a wallet's history
read back a page at a time, and every invariant of the books checked over every wallet, on
real metered calls, through both interfaces on both databases; then rows corrupted behind
the ledger's back, one way after another, each found."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike.billing import holds, reconciliation, service
from bytespike.billing.tables import holds as holds_table
from bytespike.billing.tables import ledger_entries, wallets
from bytespike.context import Context
from bytespike.money import to_usd_text
from bytespike.usage.tables import usage_records
from tests.conftest import FakeClock
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.integration.ledger_support import TTL, balances, place, release, settle
from tests.operator_support import Operator

ENTRIES = "/api/v1/admin/ledger/entries"
VERIFY = "/api/v1/admin/ledger/verify"
HI = [{"role": "user", "content": "Hello there"}]


async def call(client: httpx.AsyncClient, key: str, model: str = "mock") -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": HI},
    )
    assert response.status_code == 200, response.text


async def busy_books(ctx: Context, client: httpx.AsyncClient, clock: FakeClock) -> int:
    """Two wallets with every kind of entry: metered calls (holds settled with their usage
    records), a hold still pending, a released one, an expired one, one settled after it
    expired, top-ups and adjustments. Returns ada's wallet."""
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx)
    await call(client, key["key"])
    await call(client, key["key"])
    await make_org(ctx)
    await make_user(ctx, "bob", tier="enterprise")
    await add_member(ctx, "Dosia AI", "bob")
    await top_up(ctx, "5", org="Dosia AI")
    await call(client, (await make_key(ctx, "bob"))["key"])
    await service.adjust(ctx, amount=-1_000_000, reason="duplicate credit", username="ada")
    wallet = await wallet_of(ctx, user="ada")
    await release(ctx, await place(ctx, wallet, "1"))
    late = await place(ctx, wallet, "0.5")
    clock.advance(seconds=TTL.total_seconds() + 1)
    async with ctx.db.write() as conn:
        assert await holds.expire_due(conn, now=clock.now()) == 1
    await settle(ctx, late, "0.1")  # the call ended after its hold expired: still charged
    await place(ctx, wallet, "2")
    return wallet


async def verified(operator: Operator) -> dict[str, Any]:
    """`ledger verify` by either interface: exit 0 and ok, or exit 1 (saying so on stderr)
    after printing the report; the API answers 200 either way."""
    if operator.interface == "api":
        response = await operator.client.get(VERIFY, headers=operator.admin_headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result
    code, out, err = await operator.run_cli(["ledger", "verify", "--json"])
    result = json.loads(out)
    assert code == (0 if result["ok"] else 1), (code, out, err)
    assert (err == "") if result["ok"] else err.startswith("error: the books drifted: "), err
    return result


async def test_verify_is_clean_on_busy_books_and_says_what_it_checked(
    operator: Operator, clock: FakeClock
) -> None:
    await busy_books(operator.ctx, operator.client, clock)

    result = await verified(operator)

    assert result == {
        "ok": True,
        "checked": {"wallets": 2, "entries": 15, "holds": 6, "usage_records": 3},
        "problem_count": 0,
        "problems": [],
    }


async def test_verify_finds_a_tampered_balance_and_exits_1(
    operator: Operator, clock: FakeClock
) -> None:
    wallet = await busy_books(operator.ctx, operator.client, clock)
    available = (await balances(operator.ctx, wallet)).available
    async with operator.ctx.db.write() as conn:
        w = wallets.c
        await conn.execute(
            sa.update(wallets).where(w.id == wallet).values(available_micros=w.available_micros + 1)
        )

    result = await verified(operator)

    assert result["ok"] is False
    assert result["problem_count"] == 1
    [problem] = result["problems"]
    assert (problem["check"], problem["target_type"], problem["target_id"]) == (
        "balances",
        "wallet",
        wallet,
    )
    assert problem["message"] == (
        f"available is {to_usd_text(available + 1)} USD but its entries sum to "
        f"{to_usd_text(available)} USD"
    )


async def test_the_readable_report_lists_each_problem(
    cli_operator: Operator, clock: FakeClock
) -> None:
    wallet = await busy_books(cli_operator.ctx, cli_operator.client, clock)
    code, out, _ = await cli_operator.run_cli(["ledger", "verify"])
    assert (code, out.splitlines()) == (
        0,
        [
            "checked 2 wallets, 15 ledger entries, 6 holds, 3 usage records",
            "ok: every invariant holds",
        ],
    )
    async with cli_operator.ctx.db.write() as conn:
        await conn.execute(sa.update(wallets).where(wallets.c.id == wallet).values(spent_micros=0))
    code, out, err = await cli_operator.run_cli(["ledger", "verify"])
    assert code == 1 and err.startswith("error: the books drifted"), (code, out, err)
    assert "1 problem:" in out
    assert f"wallet {wallet}  balances  spent is 0.00 USD but its entries sum to" in out


# Corruptions, each as a stray UPDATE, DELETE or INSERT would leave the books, and what the
# report must then say about what. Checked through the service on both databases (the
# interfaces are the tests above).
Tampered = tuple[str, str, int]  # the check that must object, words it says, its target


def _copy(row: Any, **changes: Any) -> dict[str, Any]:
    """A row's values for inserting a copy of it (a new id), with `changes`."""
    return {name: value for name, value in row._mapping.items() if name != "id"} | changes


async def _hold_of_kind(conn: Any, wallet: int, status: str) -> int:
    h = holds_table.c
    query = sa.select(h.id).where(h.wallet_id == wallet, h.status == status).order_by(h.id)
    return int((await conn.execute(query)).scalars().first())


async def _metered_hold(conn: Any, wallet: int) -> int:
    u = usage_records.c
    query = sa.select(u.hold_id).where(u.wallet_id == wallet).order_by(u.id).limit(1)
    return int((await conn.execute(query)).scalar_one())


async def cost_changed(conn: Any, wallet: int) -> Tampered:
    hold_id = await _metered_hold(conn, wallet)
    u = usage_records.c
    await conn.execute(
        sa.update(usage_records).where(u.hold_id == hold_id).values(cost_micros=u.cost_micros + 7)
    )
    return "usage", "its usage record costs", hold_id


async def usage_record_lost(conn: Any, wallet: int) -> Tampered:
    hold_id = await _metered_hold(conn, wallet)
    await conn.execute(sa.delete(usage_records).where(usage_records.c.hold_id == hold_id))
    return "usage", "settled without a usage record", hold_id


async def usage_record_twice(conn: Any, wallet: int) -> Tampered:
    hold_id = await _metered_hold(conn, wallet)
    u = usage_records.c
    row = (await conn.execute(sa.select(usage_records).where(u.hold_id == hold_id))).one()
    await conn.execute(sa.insert(usage_records).values(_copy(row)))
    return "usage", "2 usage records for one call", hold_id


async def status_rewritten(conn: Any, wallet: int) -> Tampered:
    hold_id = await _hold_of_kind(conn, wallet, "released")
    await conn.execute(
        sa.update(holds_table).where(holds_table.c.id == hold_id).values(status="settled")
    )
    return "holds", "a settled hold with 0 'settle', 1 'release'", hold_id


async def amount_rewritten(conn: Any, wallet: int) -> Tampered:
    hold_id = await _hold_of_kind(conn, wallet, "released")
    await conn.execute(
        sa.update(holds_table).where(holds_table.c.id == hold_id).values(amount_micros=3)
    )
    return "holds", "its 'hold' entry holds 1.00 USD, the hold 0.000003 USD", hold_id


async def settle_entry_deleted(conn: Any, wallet: int) -> Tampered:
    hold_id = await _metered_hold(conn, wallet)
    e = ledger_entries.c
    await conn.execute(sa.delete(ledger_entries).where(e.hold_id == hold_id, e.kind == "settle"))
    return "holds", "its entries leave", hold_id


async def entry_misnamed(conn: Any, wallet: int) -> Tampered:
    hold_id = await _metered_hold(conn, wallet)
    u = usage_records.c
    await conn.execute(
        sa.update(usage_records).where(u.hold_id == hold_id).values(settle_entry_id=u.hold_entry_id)
    )
    return "usage", "its usage record names entries", hold_id


async def hold_without_entries(conn: Any, wallet: int) -> Tampered:
    h = holds_table.c
    row = (await conn.execute(sa.select(holds_table).order_by(h.id.desc()).limit(1))).one()
    new = _copy(row, status="released")
    hold_id = (await conn.execute(sa.insert(holds_table).values(new).returning(h.id))).scalar_one()
    return "holds", "a released hold with no ledger entries", int(hold_id)


async def usage_without_hold(conn: Any, wallet: int) -> Tampered:
    u = usage_records.c
    row = (await conn.execute(sa.select(usage_records).where(u.wallet_id == wallet))).first()
    assert row is not None
    new = _copy(row, hold_id=None)
    record = (await conn.execute(sa.insert(usage_records).values(new).returning(u.id))).scalar_one()
    return "usage", "with no hold, so no settlement", int(record)


@pytest.mark.parametrize(
    "tamper",
    [
        cost_changed,
        usage_record_lost,
        usage_record_twice,
        status_rewritten,
        amount_rewritten,
        settle_entry_deleted,
        entry_misnamed,
        hold_without_entries,
        usage_without_hold,
    ],
)
async def test_verify_finds_each_kind_of_drift(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock, tamper: Any
) -> None:
    wallet = await busy_books(ctx, client, clock)
    async with ctx.db.write() as conn:
        check, words, target = await tamper(conn, wallet)

    result = await service.verify(ctx)

    assert result["ok"] is False
    found = [p for p in result["problems"] if p["target_id"] == target and p["check"] == check]
    assert any(words in p["message"] for p in found), result["problems"]


async def test_a_reference_to_a_hold_that_does_not_exist_is_found_or_refused(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """SQLite's foreign keys refuse the row; PostgreSQL has none on the metered tables
    (migration 0014), so `ledger verify` finds it."""
    wallet = await busy_books(ctx, client, clock)
    u = usage_records.c
    missing = 10**12
    try:
        async with ctx.db.write() as conn:
            row = (
                await conn.execute(sa.select(usage_records).where(u.wallet_id == wallet))
            ).first()
            assert row is not None
            new = _copy(row, hold_id=missing)
            inserted = await conn.execute(sa.insert(usage_records).values(new).returning(u.id))
            record = int(inserted.scalar_one())
    except sa.exc.IntegrityError:
        assert ctx.db.is_sqlite, "only SQLite keeps the metered tables' foreign keys"
        assert (await service.verify(ctx))["ok"] is True
        return
    assert not ctx.db.is_sqlite

    result = await service.verify(ctx)

    assert result["ok"] is False
    found = [p for p in result["problems"] if p["check"] == "references"]
    assert found == [
        {
            "check": "references",
            "target_type": "usage_records",
            "target_id": record,
            "message": f"its hold_id {missing} names no row of holds",
        }
    ], result["problems"]


async def test_verify_walks_many_wallets_in_chunks(ctx: Context, client: httpx.AsyncClient) -> None:
    """Wallets are taken a chunk at a time: a problem in the last chunk is still found, and
    every wallet is counted once."""
    for n in range(7):
        await make_user(ctx, f"user{n}")
        await top_up(ctx, "1", user=f"user{n}")
    last = await wallet_of(ctx, user="user6")
    async with ctx.db.write() as conn:
        await conn.execute(sa.update(wallets).where(wallets.c.id == last).values(held_micros=1))
    async with ctx.db.read() as conn:
        report = await reconciliation.run(conn, chunk=3)
    assert report.checked == {"wallets": 7, "entries": 7, "holds": 0, "usage_records": 0}
    assert {(p.target_id, p.check) for p in report.problems} == {(last, "balances")}
    assert report.problem_count == 2  # held != its entries, held != its pending holds


# --- ledger entries -----------------------------------------------------------------------


async def entries(operator: Operator, **params: Any) -> Any:
    """`ledger entries --user ada --limit 4` or GET ...?user=ada&limit=4 (None: left out)."""
    given = {name: value for name, value in params.items() if value is not None}
    cli = ["ledger", "entries"]
    for name, value in given.items():
        cli += [f"--{name}", str(value)]
    return await operator.ok(cli, "GET", ENTRIES, params=given)


async def test_entries_read_a_wallet_newest_first_a_page_at_a_time(
    operator: Operator, clock: FakeClock
) -> None:
    await busy_books(operator.ctx, operator.client, clock)

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await entries(operator, user="ada", limit=4, cursor=cursor)
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == str(page["data"][-1]["id"])

    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) == 12
    assert [e["kind"] for e in seen] == [
        "hold", "settle", "expire", "hold", "release", "hold", "adjust",
        "settle", "hold", "settle", "hold", "topup",
    ]  # fmt: skip
    assert seen[-1]["topped_up_usd"] == 10.0
    adjustment = next(e for e in seen if e["kind"] == "adjust")
    assert adjustment["memo"] == "duplicate credit"
    assert (adjustment["available_usd"], adjustment["adjusted_usd"]) == (-1.0, -1.0)
    metered = next(e for e in seen if e["kind"] == "settle" and e["key_id"] is not None)
    assert metered["model"] == "mock" and metered["hold_id"] is not None
    assert metered["held_usd"] < 0 and metered["spent_usd"] > 0
    assert set(seen[0]) == {
        "id", "kind", "available_usd", "held_usd", "spent_usd", "topped_up_usd",
        "adjusted_usd", "hold_id", "key_id", "model", "reference", "memo", "created_at",
    }  # fmt: skip
    for entry in seen:  # each entry balances, as shown
        moved = entry["available_usd"] + entry["held_usd"] + entry["spent_usd"]
        assert round(moved - entry["topped_up_usd"] - entry["adjusted_usd"], 6) == 0


async def test_entries_of_an_org(operator: Operator, clock: FakeClock) -> None:
    await busy_books(operator.ctx, operator.client, clock)
    page = await entries(operator, org="Dosia AI")
    assert [e["kind"] for e in page["data"]] == ["settle", "hold", "topup"]
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("args", "status", "why"),
    [
        (["--user", "nobody"], 404, "no user"),
        (["--user", "bob"], 400, "enterprise"),
        (["--user", "ada", "--limit", "0"], 400, "limit"),
        (["--user", "ada", "--limit", "201"], 400, "limit"),
        (["--user", "ada", "--cursor", "x1"], 400, "cursor"),
    ],
)
async def test_entries_refusals(operator: Operator, args: list[str], status: int, why: str) -> None:
    await make_user(operator.ctx)
    await make_org(operator.ctx)
    await make_user(operator.ctx, "bob", tier="enterprise")
    await add_member(operator.ctx, "Dosia AI", "bob")
    params = {a.lstrip("-"): v for a, v in zip(args[::2], args[1::2], strict=True)}
    message = await operator.fails(
        ["ledger", "entries", *args], "GET", ENTRIES, params=params, status=status
    )
    assert why in message, message


async def test_the_readable_entries_table(cli_operator: Operator) -> None:
    await make_user(cli_operator.ctx)
    await top_up(cli_operator.ctx, "10", user="ada", reference="inv-1")
    await service.adjust(cli_operator.ctx, amount=-2_500_000, reason="duplicate", username="ada")
    code, out, _ = await cli_operator.run_cli(["ledger", "entries", "--user", "ada"])
    assert code == 0
    header, debit, credit = out.splitlines()
    assert header.split() == [
        "ID", "TIME", "KIND", "AVAILABLE", "HELD", "SPENT", "TOPPED", "UP", "ADJUSTED",
        "HOLD", "KEY", "MODEL", "REFERENCE", "MEMO",
    ]  # fmt: skip
    assert debit.split()[2:] == [
        "adjust",
        "-2.50",
        "-",
        "-",
        "-",
        "-2.50",
        "-",
        "-",
        "-",
        "-",
        "duplicate",
    ]
    assert credit.split()[2:] == [
        "topup",
        "+10.00",
        "-",
        "-",
        "+10.00",
        "-",
        "-",
        "-",
        "-",
        "inv-1",
        "-",
    ]
