"""bytespike users list / show / update / suspend / unsuspend, through the CLI and the admin
API alike (the `operator` fixture), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import sqlalchemy as sa

from bytespike.audit.tables import audit_log
from bytespike.billing.tables import wallets
from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.keys.tables import api_keys
from tests.factories import add_member, make_key, make_org, make_user, top_up
from tests.operator_support import Operator, cli

USERS = "/api/v1/admin/users"


async def audit_rows(ctx: Context, action: str) -> list[dict[str, Any]]:
    a = audit_log.c
    async with ctx.db.read() as conn:
        rows = await conn.execute(
            sa.select(a.actor, a.target_type, a.target_id, a.before, a.after)
            .where(a.action == action)
            .order_by(a.id)
        )
        return [
            {
                "actor": r.actor,
                "target": (r.target_type, r.target_id),
                "before": None if r.before is None else json.loads(r.before),
                "after": None if r.after is None else json.loads(r.after),
            }
            for r in rows
        ]


async def key_versions(ctx: Context, user_id: int) -> list[int]:
    k = api_keys.c
    async with ctx.db.read() as conn:
        query = sa.select(k.version).where(k.user_id == user_id).order_by(k.id)
        return [int(v) for v in (await conn.execute(query)).scalars()]


def actor_of(operator: Operator) -> str:
    return "admin-api" if operator.interface == "api" else "cli:"


async def test_users_list_pages_with_cursors(ctx: Context, operator: Operator) -> None:
    for name in ("ada", "bob", "cy"):
        await make_user(ctx, name)
    first = await operator.ok(["users", "list", "--limit", "2"], "GET", USERS, params={"limit": 2})
    assert [u["username"] for u in first["data"]] == ["ada", "bob"]
    assert first["next_cursor"] is not None
    assert first["data"][0] == {
        "id": 1,
        "username": "ada",
        "email": "ada@dosia.ai",
        "tier": "individual",
        "status": "active",
        "suspended_at": None,
        "created_at": "2026-03-10T12:00:00Z",
    }
    cursor = first["next_cursor"]
    rest = await operator.ok(
        ["users", "list", "--limit", "2", "--cursor", cursor],
        "GET",
        USERS,
        params={"limit": 2, "cursor": cursor},
    )
    assert [u["username"] for u in rest["data"]] == ["cy"]
    assert rest["next_cursor"] is None
    default = await operator.ok(["users", "list"], "GET", USERS)
    assert len(default["data"]) == 3 and default["next_cursor"] is None


async def test_a_bad_limit_or_cursor_is_refused(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada")
    for limit in (0, 201):
        message = await operator.fails(
            ["users", "list", "--limit", str(limit)],
            "GET",
            USERS,
            params={"limit": limit},
            status=400,
        )
        assert "limit" in message
    message = await operator.fails(
        ["users", "list", "--cursor", "x1"], "GET", USERS, params={"cursor": "x1"}, status=400
    )
    assert "cursor" in message


async def test_users_list_of_one_org_shows_each_members_role(
    ctx: Context, operator: Operator
) -> None:
    for name in ("ada", "bob", "cy"):
        await make_user(ctx, name)
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "cy", "owner")
    await add_member(ctx, "Dosia AI", "ada", "member")
    members = await operator.ok(
        ["users", "list", "--org", "Dosia AI"], "GET", USERS, params={"org": "Dosia AI"}
    )
    assert [(u["username"], u["role"]) for u in members["data"]] == [
        ("ada", "member"),
        ("cy", "owner"),
    ]
    message = await operator.fails(
        ["users", "list", "--org", "Nowhere"], "GET", USERS, params={"org": "Nowhere"}, status=404
    )
    assert "Nowhere" in message


async def test_users_show_status_orgs_wallet_and_keys(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada")
    await make_user(ctx, "bob", tier="enterprise")
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", "admin")
    await add_member(ctx, "Dosia AI", "bob", "member")
    await top_up(ctx, "250", user="ada")
    await make_key(ctx, "ada")
    revoked = await make_key(ctx, "ada")
    await keys.revoke(ctx, revoked["id"])

    ada = await operator.ok(["users", "show", "ada"], "GET", f"{USERS}/ada")
    assert ada == {
        "id": 1,
        "username": "ada",
        "email": "ada@dosia.ai",
        "tier": "individual",
        "created_at": "2026-03-10T12:00:00Z",
        "status": "active",
        "suspended_at": None,
        "memberships": [
            {"id": 1, "name": "Dosia AI", "role": "admin", "joined_at": "2026-03-10T12:00:00Z"}
        ],
        "wallet": {
            "id": 1,
            "available_usd": 250.0,
            "held_usd": 0.0,
            "lifetime_topup_usd": 250.0,
            "lifetime_spent_usd": 0.0,
            "low_balance_threshold_usd": 5.0,
            "low_balance_flagged": False,
        },
        "keys": {"active": 1, "revoked": 1, "expired": 0},
    }
    bob = await operator.ok(["users", "show", "id:2"], "GET", f"{USERS}/id:2")
    assert (bob["username"], bob["tier"], bob["wallet"]) == ("bob", "enterprise", None)
    assert bob["keys"] == {"active": 0, "revoked": 0, "expired": 0}


async def test_unknown_users_are_404(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada")
    for cli_args, method, path, body in [
        (["users", "show", "nobody"], "GET", f"{USERS}/nobody", None),
        (["users", "show", "id:99"], "GET", f"{USERS}/id:99", None),
        (
            ["users", "update", "nobody", "--email", "a@b.co"],
            "PATCH",
            f"{USERS}/nobody",
            {"email": "a@b.co"},
        ),
        (["users", "suspend", "nobody"], "POST", f"{USERS}/nobody/suspend", None),
        (["users", "unsuspend", "nobody"], "POST", f"{USERS}/nobody/unsuspend", None),
    ]:
        message = await operator.fails(cli_args, method, path, body, status=404)
        assert "no user" in message


async def test_a_reference_that_could_mean_two_users_is_refused(
    ctx: Context, operator: Operator
) -> None:
    await make_user(ctx, "ada")  # id 1
    await make_user(ctx, "1")  # id 2, named "1"
    message = await operator.fails(["users", "show", "1"], "GET", f"{USERS}/1", status=400)
    assert "id:1" in message and "name:1" in message
    message = await operator.fails(
        ["users", "suspend", "1"], "POST", f"{USERS}/1/suspend", status=400
    )
    assert "could mean" in message
    by_id = await operator.ok(["users", "show", "id:1"], "GET", f"{USERS}/id:1")
    by_name = await operator.ok(["users", "show", "name:1"], "GET", f"{USERS}/name:1")
    assert (by_id["username"], by_name["username"]) == ("ada", "1")
    assert await audit_rows(ctx, "user.suspend") == []


async def test_update_corrects_the_email_and_audits_it(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada", email="ada@dosia.ia")
    updated = await operator.ok(
        ["users", "update", "ada", "--email", "ada@dosia.ai"],
        "PATCH",
        f"{USERS}/ada",
        {"email": "ada@dosia.ai"},
    )
    assert (updated["email"], updated["tier"]) == ("ada@dosia.ai", "individual")
    rows = await audit_rows(ctx, "user.update")
    assert len(rows) == 1
    assert rows[0]["actor"].startswith(actor_of(operator))
    assert rows[0]["target"] == ("user", "1")
    assert (rows[0]["before"], rows[0]["after"]) == (
        {"email": "ada@dosia.ia"},
        {"email": "ada@dosia.ai"},
    )
    for cli_args, body in [
        (["--email", "not-an-email"], {"email": "not-an-email"}),
        (["--tier", "platinum"], {"tier": "platinum"}),
        ([], {}),
    ]:
        await operator.fails(
            ["users", "update", "ada", *cli_args], "PATCH", f"{USERS}/ada", body, status=400
        )
    assert len(await audit_rows(ctx, "user.update")) == 1


async def test_tier_changes_keep_a_wallet_and_need_an_org(ctx: Context, operator: Operator) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "40", user="ada")
    await make_key(ctx, "ada")
    message = await operator.fails(
        ["users", "update", "ada", "--tier", "enterprise"],
        "PATCH",
        f"{USERS}/ada",
        {"tier": "enterprise"},
        status=400,
    )
    assert "no org" in message
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", "owner")
    made = await operator.ok(
        ["users", "update", "ada", "--tier", "enterprise"],
        "PATCH",
        f"{USERS}/ada",
        {"tier": "enterprise"},
    )
    assert made["tier"] == "enterprise"
    assert await key_versions(ctx, 1) == [1]  # which wallet pays changed: read the key anew
    shown = await operator.ok(["users", "show", "ada"], "GET", f"{USERS}/ada")
    assert shown["wallet"] is None
    back = await operator.ok(
        ["users", "update", "ada", "--tier", "individual"],
        "PATCH",
        f"{USERS}/ada",
        {"tier": "individual"},
    )
    assert back["tier"] == "individual"
    shown = await operator.ok(["users", "show", "ada"], "GET", f"{USERS}/ada")
    assert (shown["wallet"]["id"], shown["wallet"]["available_usd"]) == (1, 40.0)  # the same one
    rows = await audit_rows(ctx, "user.update")
    assert [(r["before"], r["after"]) for r in rows] == [
        ({"tier": "individual"}, {"tier": "enterprise"}),
        ({"tier": "enterprise"}, {"tier": "individual"}),
    ]


async def test_an_enterprise_user_made_individual_gets_a_wallet(
    ctx: Context, operator: Operator
) -> None:
    await make_user(ctx, "bob", tier="enterprise")
    await operator.ok(
        ["users", "update", "bob", "--tier", "individual"],
        "PATCH",
        f"{USERS}/bob",
        {"tier": "individual"},
    )
    shown = await operator.ok(["users", "show", "bob"], "GET", f"{USERS}/bob")
    assert shown["wallet"]["available_usd"] == 0.0
    async with ctx.db.read() as conn:
        owned = await conn.execute(sa.select(wallets.c.id).where(wallets.c.user_id == 1))
        assert len(owned.all()) == 1


async def test_suspend_and_unsuspend_are_idempotent_and_audited(
    ctx: Context, operator: Operator
) -> None:
    await make_user(ctx, "ada")
    await make_key(ctx, "ada")
    await make_key(ctx, "ada")
    suspended = await operator.ok(["users", "suspend", "ada"], "POST", f"{USERS}/ada/suspend")
    assert (suspended["status"], suspended["already_suspended"]) == ("suspended", False)
    assert suspended["suspended_at"] is not None
    again = await operator.ok(["users", "suspend", "ada"], "POST", f"{USERS}/ada/suspend")
    assert (again["already_suspended"], again["suspended_at"]) == (True, suspended["suspended_at"])
    assert await key_versions(ctx, 1) == [1, 1]  # bumped once, by the change only
    shown = await operator.ok(["users", "show", "ada"], "GET", f"{USERS}/ada")
    assert (shown["status"], shown["suspended_at"]) == ("suspended", suspended["suspended_at"])

    lifted = await operator.ok(["users", "unsuspend", "ada"], "POST", f"{USERS}/ada/unsuspend")
    assert (lifted["status"], lifted["suspended_at"], lifted["already_active"]) == (
        "active",
        None,
        False,
    )
    again = await operator.ok(["users", "unsuspend", "ada"], "POST", f"{USERS}/ada/unsuspend")
    assert again["already_active"] is True
    assert await key_versions(ctx, 1) == [2, 2]

    [suspend] = await audit_rows(ctx, "user.suspend")
    [unsuspend] = await audit_rows(ctx, "user.unsuspend")
    assert suspend["target"] == unsuspend["target"] == ("user", "1")
    assert suspend["actor"].startswith(actor_of(operator))
    assert suspend["before"] == {"suspended_at": None}
    assert suspend["after"] == {"suspended_at": suspended["suspended_at"]}
    assert unsuspend["after"] == {"suspended_at": None}


async def test_a_suspended_users_keys_are_refused_until_unsuspended(
    ctx: Context, operator: Operator
) -> None:
    """On the account endpoint and on the metered path, whose cached copy of the key the
    version bump invalidates."""
    await make_user(ctx, "ada")
    await top_up(ctx, "5", user="ada")
    key = await make_key(ctx, "ada")
    headers = {"Authorization": f"Bearer {key['key']}"}
    chat = {"model": "mock", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}

    async def statuses() -> tuple[int, int]:
        account = await operator.client.get("/api/v1/me/account", headers=headers)
        call = await operator.client.post("/v1/chat/completions", json=chat, headers=headers)
        for refused in (account, call):
            if refused.status_code == 403:
                assert refused.json()["error"]["type"] == "permission_error", refused.text
        return account.status_code, call.status_code

    assert await statuses() == (200, 200)
    await operator.ok(["users", "suspend", "ada"], "POST", f"{USERS}/ada/suspend")
    assert await statuses() == (403, 403)
    await operator.ok(["users", "unsuspend", "ada"], "POST", f"{USERS}/ada/unsuspend")
    assert await statuses() == (200, 200)


async def test_creating_a_user_is_audited_without_secrets(ctx: Context, operator: Operator) -> None:
    await operator.ok(
        ["users", "create", "--username", "ada", "--email", "ada@dosia.ai"],
        "POST",
        USERS,
        {"username": "ada", "email": "ada@dosia.ai"},
    )
    [row] = await audit_rows(ctx, "user.create")
    assert row["before"] is None
    assert row["after"]["username"] == "ada" and row["after"]["tier"] == "individual"


async def test_users_list_as_a_table(ctx: Context) -> None:
    for name in ("ada", "bob", "cy"):
        await make_user(ctx, name)
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "bob", "owner")
    url = ctx.settings.database_url
    code, out, err = await asyncio.to_thread(cli, url, ["users", "list", "--limit", "2"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "USERNAME", "EMAIL", "TIER", "STATUS", "CREATED"]
    assert lines[1].split() == [
        "1",
        "ada",
        "ada@dosia.ai",
        "individual",
        "active",
        "2026-03-10T12:00:00Z",
    ]
    assert lines[2].split()[1] == "bob"
    assert lines[3] == "(more: add --cursor 2)"
    code, out, err = await asyncio.to_thread(cli, url, ["users", "list", "--org", "Dosia AI"])
    assert code == 0, err
    assert out.splitlines()[0].split()[:3] == ["ID", "USERNAME", "ROLE"]
    assert out.splitlines()[1].split()[:3] == ["2", "bob", "owner"]
    code, out, err = await asyncio.to_thread(cli, url, ["users", "show", "bob"])
    assert code == 0, err
    assert "status: active" in out and "wallet: 0.00 USD available" in out
    assert "Dosia AI" in out and "owner" in out


READ_AND_CORRECT = [
    ("GET", "/api/v1/admin/users", None),
    ("GET", "/api/v1/admin/users/ada", None),
    ("PATCH", "/api/v1/admin/users/ada", {"email": "x@dosia.ai"}),
    ("POST", "/api/v1/admin/users/ada/suspend", None),
    ("POST", "/api/v1/admin/users/ada/unsuspend", None),
    ("GET", "/api/v1/admin/orgs", None),
    ("GET", "/api/v1/admin/orgs/1", None),
    ("PATCH", "/api/v1/admin/orgs/1", {"name": "Else"}),
    ("DELETE", "/api/v1/admin/orgs/1/members/ada", None),
    ("GET", "/api/v1/admin/wallets?user=ada", None),
]


async def test_the_read_side_needs_the_admin_token(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx, "ada")
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", "member")
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        for method, path, body in READ_AND_CORRECT:
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["type"] == "authentication_error"
    async with ctx.db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar() == 3
