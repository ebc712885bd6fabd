"""bytespike orgs list / show / rename / remove-member (and the last-owner rule of
add-member), through the CLI and the admin API alike, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from bytespike.context import Context
from tests.factories import add_member, make_key, make_org, make_user, top_up
from tests.operator.test_users import actor_of, audit_rows, key_versions
from tests.operator_support import Operator, cli

ORGS = "/api/v1/admin/orgs"


async def seed(ctx: Context) -> None:
    """Dosia AI: ada owner, bob admin (enterprise), cy member; and an empty org, Acme."""
    await make_user(ctx, "ada")
    await make_user(ctx, "bob", tier="enterprise")
    await make_user(ctx, "cy")
    await make_org(ctx, "Dosia AI")
    await make_org(ctx, "Acme")
    await add_member(ctx, "Dosia AI", "ada", "owner")
    await add_member(ctx, "Dosia AI", "bob", "admin")
    await add_member(ctx, "Dosia AI", "cy", "member")


async def test_orgs_list_pages_with_cursors(ctx: Context, operator: Operator) -> None:
    await seed(ctx)
    await make_org(ctx, "Zeta")
    first = await operator.ok(["orgs", "list", "--limit", "2"], "GET", ORGS, params={"limit": 2})
    assert first["data"] == [
        {
            "id": 1,
            "name": "Dosia AI",
            "paused": False,
            "members": 3,
            "created_at": "2026-03-10T12:00:00Z",
        },
        {
            "id": 2,
            "name": "Acme",
            "paused": False,
            "members": 0,
            "created_at": "2026-03-10T12:00:00Z",
        },
    ]
    cursor = first["next_cursor"]
    assert cursor is not None
    rest = await operator.ok(
        ["orgs", "list", "--limit", "2", "--cursor", cursor],
        "GET",
        ORGS,
        params={"limit": 2, "cursor": cursor},
    )
    assert ([o["name"] for o in rest["data"]], rest["next_cursor"]) == (["Zeta"], None)


async def test_orgs_show_members_roles_and_wallet(ctx: Context, operator: Operator) -> None:
    await seed(ctx)
    await top_up(ctx, "120.5", org="Dosia AI")
    shown = await operator.ok(["orgs", "show", "Dosia AI"], "GET", f"{ORGS}/Dosia AI")
    joined = "2026-03-10T12:00:00Z"
    assert shown == {
        "id": 1,
        "name": "Dosia AI",
        "paused": False,
        "created_at": joined,
        "members": [
            {"id": 1, "username": "ada", "role": "owner", "joined_at": joined},
            {"id": 2, "username": "bob", "role": "admin", "joined_at": joined},
            {"id": 3, "username": "cy", "role": "member", "joined_at": joined},
        ],
        "wallet": {
            "id": 3,  # after ada's and cy's own
            "available_usd": 120.5,
            "held_usd": 0.0,
            "lifetime_topup_usd": 120.5,
            "lifetime_spent_usd": 0.0,
            "low_balance_threshold_usd": 5.0,
            "low_balance_flagged": False,
        },
    }
    by_id = await operator.ok(["orgs", "show", "id:2"], "GET", f"{ORGS}/id:2")
    assert (by_id["name"], by_id["members"]) == ("Acme", [])
    message = await operator.fails(
        ["orgs", "show", "Nowhere"], "GET", f"{ORGS}/Nowhere", status=404
    )
    assert "no org" in message


async def test_an_org_reference_that_could_mean_two_orgs_is_refused(
    ctx: Context, operator: Operator
) -> None:
    await make_org(ctx, "Dosia AI")  # id 1
    await make_org(ctx, "1")  # id 2, named "1"
    message = await operator.fails(["orgs", "show", "1"], "GET", f"{ORGS}/1", status=400)
    assert "id:1" in message and "name:1" in message
    message = await operator.fails(
        ["orgs", "rename", "1", "--name", "One"], "PATCH", f"{ORGS}/1", {"name": "One"}, status=400
    )
    assert "could mean" in message
    assert (await operator.ok(["orgs", "show", "name:1"], "GET", f"{ORGS}/name:1"))["id"] == 2


async def test_rename_follows_the_name_rules_and_is_audited(
    ctx: Context, operator: Operator
) -> None:
    await seed(ctx)
    renamed = await operator.ok(
        ["orgs", "rename", "Dosia AI", "--name", "  Dosia Labs "],
        "PATCH",
        f"{ORGS}/Dosia AI",
        {"name": "  Dosia Labs "},
    )
    assert (renamed["id"], renamed["name"]) == (1, "Dosia Labs")
    assert (await operator.ok(["orgs", "show", "id:1"], "GET", f"{ORGS}/id:1"))["name"] == (
        "Dosia Labs"
    )
    message = await operator.fails(
        ["orgs", "rename", "Dosia Labs", "--name", "Acme"],
        "PATCH",
        f"{ORGS}/Dosia Labs",
        {"name": "Acme"},
        status=409,
    )
    assert "Acme" in message
    for bad in ("   ", "x" * 201, "id:7", "name:Acme"):
        await operator.fails(
            ["orgs", "rename", "Dosia Labs", "--name", bad],
            "PATCH",
            f"{ORGS}/Dosia Labs",
            {"name": bad},
            status=400,
        )
    await operator.fails(
        ["orgs", "rename", "Nowhere", "--name", "Else"],
        "PATCH",
        f"{ORGS}/Nowhere",
        {"name": "Else"},
        status=404,
    )
    [row] = await audit_rows(ctx, "org.rename")
    assert row["actor"].startswith(actor_of(operator))
    assert (row["target"], row["before"], row["after"]) == (
        ("org", "1"),
        {"name": "Dosia AI"},
        {"name": "Dosia Labs"},
    )


async def test_remove_member_bumps_their_keys_and_is_audited(
    ctx: Context, operator: Operator
) -> None:
    await seed(ctx)
    await make_org(ctx, "Other")
    await add_member(ctx, "Other", "cy", "member")
    await make_key(ctx, "cy", org="Dosia AI")
    await make_key(ctx, "cy", org="Other")
    await make_key(ctx, "cy")  # in no org: it billed cy's oldest org, Dosia AI
    await make_key(ctx, "ada")
    removed = await operator.ok(
        ["orgs", "remove-member", "--org", "Dosia AI", "--user", "cy"],
        "DELETE",
        f"{ORGS}/Dosia AI/members/cy",
    )
    assert (removed["id"], removed["username"], removed["role"], removed["removed"]) == (
        1,
        "cy",
        "member",
        True,
    )
    shown = await operator.ok(["orgs", "show", "Dosia AI"], "GET", f"{ORGS}/Dosia AI")
    assert [m["username"] for m in shown["members"]] == ["ada", "bob"]
    assert await key_versions(ctx, 3) == [1, 0, 1]  # read anew, all but the one in Other
    assert await key_versions(ctx, 1) == [0]
    [row] = await audit_rows(ctx, "org.remove_member")
    assert row["target"] == ("org", "1")
    assert row["before"]["username"] == "cy" and row["before"]["role"] == "member"
    assert row["after"] is None

    message = await operator.fails(
        ["orgs", "remove-member", "--org", "Dosia AI", "--user", "cy"],
        "DELETE",
        f"{ORGS}/Dosia AI/members/cy",
        status=404,
    )
    assert "not a member" in message
    for org, user in (("Nowhere", "cy"), ("Dosia AI", "nobody")):
        await operator.fails(
            ["orgs", "remove-member", "--org", org, "--user", user],
            "DELETE",
            f"{ORGS}/{org}/members/{user}",
            status=404,
        )


async def test_the_last_owner_can_be_neither_removed_nor_demoted(
    ctx: Context, operator: Operator
) -> None:
    await seed(ctx)
    remove = (
        ["orgs", "remove-member", "--org", "Dosia AI", "--user", "ada"],
        "DELETE",
        f"{ORGS}/Dosia AI/members/ada",
    )
    message = await operator.fails(*remove, status=400)
    assert "last owner" in message
    demote = (
        ["orgs", "add-member", "--org", "Dosia AI", "--user", "ada", "--role", "admin"],
        "POST",
        f"{ORGS}/Dosia AI/members",
        {"username": "ada", "role": "admin"},
    )
    message = await operator.fails(*demote, status=400)
    assert "last owner" in message
    members = await operator.ok(["orgs", "show", "Dosia AI"], "GET", f"{ORGS}/Dosia AI")
    assert members["members"][0]["role"] == "owner"

    # With a second owner, either may go.
    await operator.ok(
        ["orgs", "add-member", "--org", "Dosia AI", "--user", "bob", "--role", "owner"],
        "POST",
        f"{ORGS}/Dosia AI/members",
        {"username": "bob", "role": "owner"},
    )
    demoted = await operator.ok(*demote)
    assert demoted["role"] == "admin"
    message = await operator.fails(
        ["orgs", "remove-member", "--org", "Dosia AI", "--user", "bob"],
        "DELETE",
        f"{ORGS}/Dosia AI/members/bob",
        status=400,
    )
    assert "last owner" in message
    changes = await audit_rows(ctx, "org.change_role")
    assert [(r["before"]["role"], r["after"]["role"]) for r in changes] == [
        ("admin", "owner"),
        ("owner", "admin"),
    ]


async def test_every_change_to_orgs_is_audited(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada")
    await operator.ok(["orgs", "create", "--name", "Dosia AI"], "POST", ORGS, {"name": "Dosia AI"})
    member = (
        ["orgs", "add-member", "--org", "Dosia AI", "--user", "ada", "--role", "owner"],
        "POST",
        f"{ORGS}/Dosia AI/members",
        {"username": "ada", "role": "owner"},
    )
    await operator.ok(*member)
    await operator.ok(*member)  # the same role again changes nothing
    for _ in range(2):  # pausing a paused org changes nothing
        await operator.ok(["orgs", "pause", "--org", "Dosia AI"], "POST", f"{ORGS}/Dosia AI/pause")
    await operator.ok(["orgs", "resume", "--org", "Dosia AI"], "POST", f"{ORGS}/Dosia AI/resume")
    [created] = await audit_rows(ctx, "org.create")
    assert created["after"]["name"] == "Dosia AI"
    assert created["actor"].startswith(actor_of(operator))
    [added] = await audit_rows(ctx, "org.add_member")
    assert (added["before"], added["after"]["username"], added["after"]["role"]) == (
        None,
        "ada",
        "owner",
    )
    [paused] = await audit_rows(ctx, "org.pause")
    assert (paused["before"], paused["after"]) == ({"paused": False}, {"paused": True})
    [resumed] = await audit_rows(ctx, "org.resume")
    assert resumed["after"] == {"paused": False}


async def test_orgs_list_and_show_as_tables(ctx: Context) -> None:
    await seed(ctx)
    url = ctx.settings.database_url
    code, out, err = await asyncio.to_thread(cli, url, ["orgs", "list"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "PAUSED", "MEMBERS", "CREATED"]
    assert lines[1].split() == ["1", "Dosia", "AI", "no", "3", "2026-03-10T12:00:00Z"]
    assert len(lines) == 3  # no "(more: ...)" line on the last page
    code, out, err = await asyncio.to_thread(cli, url, ["orgs", "show", "Dosia AI"])
    assert code == 0, err
    assert "name: Dosia AI" in out and "0.00 USD available" in out
    assert any(line.split()[:3] == ["2", "bob", "admin"] for line in out.splitlines())
