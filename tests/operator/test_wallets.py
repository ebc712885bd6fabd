"""bytespike wallets show, through the CLI and the admin API alike, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from bytespike.billing import holds
from bytespike.context import Context
from bytespike.money import parse_usd
from tests.factories import add_member, make_org, make_user, top_up, wallet_of
from tests.operator_support import Operator, cli

WALLETS = "/api/v1/admin/wallets"


async def test_a_users_wallet_with_money_held(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "25.5", user="ada")
    wallet_id = await wallet_of(ctx, user="ada")
    async with ctx.db.write() as conn:
        await holds.place(conn, wallet_id, parse_usd("0.75"), now=ctx.clock.now(), ttl=ctx.hold_ttl)
    shown = await operator.ok(
        ["wallets", "show", "--user", "ada"], "GET", WALLETS, params={"user": "ada"}
    )
    assert shown == {
        "id": wallet_id,
        "owner": {"type": "user", "id": 1, "name": "ada"},
        "available_usd": 24.75,
        "held_usd": 0.75,
        "lifetime_topup_usd": 25.5,
        "lifetime_spent_usd": 0.0,
        "lifetime_adjusted_usd": 0.0,
        "low_balance_threshold_usd": 5.0,
        "low_balance_flagged": False,
        "created_at": "2026-03-10T12:00:00Z",
    }


async def test_an_orgs_wallet_by_name_or_id(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "bob", tier="enterprise")
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "bob", "owner")
    await top_up(ctx, "3", org="Dosia AI")
    by_name = await operator.ok(
        ["wallets", "show", "--org", "Dosia AI"], "GET", WALLETS, params={"org": "Dosia AI"}
    )
    by_id = await operator.ok(
        ["wallets", "show", "--org", "id:1"], "GET", WALLETS, params={"org": "id:1"}
    )
    assert by_name == by_id
    assert by_name["owner"] == {"type": "org", "id": 1, "name": "Dosia AI"}
    assert (by_name["available_usd"], by_name["low_balance_flagged"]) == (3.0, True)


async def test_refusals(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada")
    await make_user(ctx, "bob", tier="enterprise")
    await make_org(ctx, "Dosia AI")
    message = await operator.fails(
        ["wallets", "show", "--user", "bob"], "GET", WALLETS, params={"user": "bob"}, status=400
    )
    assert "--org" in message  # an enterprise user is billed to their org
    for params in ({"user": "nobody"}, {"org": "Nowhere"}):
        [(option, ref)] = params.items()
        await operator.fails(
            ["wallets", "show", f"--{option}", ref], "GET", WALLETS, params=params, status=404
        )
    # Both owners, or neither: the API's 400 (the CLI refuses it as a usage error, exit 2).
    if operator.interface == "api":
        for params in ({}, {"user": "ada", "org": "Dosia AI"}):
            await operator.fails([], "GET", WALLETS, params=params, status=400)
    else:
        code, _, err = await operator.run_cli(["wallets", "show", "--user", "ada", "--org", "1"])
        assert code == 2 and "exactly one" in err


async def test_wallets_show_as_fields(ctx: Context) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "250", user="ada")
    code, out, err = await asyncio.to_thread(
        cli, ctx.settings.database_url, ["wallets", "show", "--user", "ada"]
    )
    assert code == 0, err
    assert out.splitlines() == [
        "id: 1",
        "owner: user ada (id 1)",
        "available: 250.00 USD",
        "held: 0.00 USD",
        "lifetime_topup: 250.00 USD",
        "lifetime_spent: 0.00 USD",
        "lifetime_adjusted: 0.00 USD",
        "low_balance_threshold: 5.00 USD",
        "low_balance_flagged: no",
        "created_at: 2026-03-10T12:00:00Z",
    ]
