"""`bytespike keys list|show|update|roll` and the admin API's /keys, on both interfaces and
both databases: keys can be read back (never their secret), changed and rolled."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from bytespike.audit.tables import audit_log
from bytespike.context import Context
from tests.factories import add_member, make_key, make_org, make_user
from tests.operator_support import Operator

KEYS = "/api/v1/admin/keys"


async def me(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.get("/api/v1/me/key", headers={"Authorization": f"Bearer {secret}"})


async def test_keys_list_by_page_and_never_a_secret(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    await make_user(ctx, "bob")
    made = [await make_key(ctx, "ada", name=f"k{i}") for i in range(3)]
    await make_key(ctx, "bob")
    first = await operator.ok(
        ["keys", "list", "--user", "ada", "--limit", "2"],
        "GET",
        KEYS,
        params={"user": "ada", "limit": 2},
    )
    assert [k["name"] for k in first["data"]] == ["k0", "k1"]
    assert first["next_cursor"]
    rest = await operator.ok(
        ["keys", "list", "--user", "ada", "--cursor", first["next_cursor"]],
        "GET",
        KEYS,
        params={"user": "ada", "cursor": first["next_cursor"]},
    )
    assert [k["name"] for k in rest["data"]] == ["k2"] and rest["next_cursor"] is None
    text = json.dumps([first, rest])
    for key in made:
        assert key["key"] not in text
    assert "hash" not in text
    shown = first["data"][0]
    assert shown["prefix"] == made[0]["prefix"] and shown["username"] == "ada"
    assert shown["status"] == "active" and shown["last_used_at"] is None
    assert shown["budget"] is None and shown["spent_usd"] == 0
    assert {m["id"] for m in shown["models"]} == set(ctx.catalog.ids)


async def test_revoked_keys_are_listed_only_when_asked(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    live = await make_key(ctx, "ada")
    gone = await make_key(ctx, "ada")
    await operator.ok(["keys", "revoke", str(gone["id"])], "POST", f"{KEYS}/{gone['id']}/revoke")
    default = await operator.ok(["keys", "list"], "GET", KEYS)
    assert [k["id"] for k in default["data"]] == [live["id"]]
    every = await operator.ok(
        ["keys", "list", "--revoked"], "GET", KEYS, params={"revoked": "true"}
    )
    assert [(k["id"], k["status"]) for k in every["data"]] == [
        (live["id"], "active"),
        (gone["id"], "revoked"),
    ]


async def test_keys_list_by_org(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    await make_org(ctx, "Dosia")
    await add_member(ctx, "Dosia", "ada")
    in_org = await make_key(ctx, "ada", org="Dosia")
    await make_key(ctx, "ada")
    found = await operator.ok(
        ["keys", "list", "--org", "Dosia"], "GET", KEYS, params={"org": "Dosia"}
    )
    assert [(k["id"], k["org"]) for k in found["data"]] == [(in_org["id"], "Dosia")]


async def test_show_and_update_every_setting(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    key = await make_key(ctx, "ada", models=[("gpt-5-4", None), ("mock", None)])
    path = f"{KEYS}/{key['id']}"
    updated = await operator.ok(
        ["keys", "update", str(key["id"]), "--name", "ci", "--model", "gpt-5-4=5",
         "--remove-model", "mock", "--rate-limit", "30", "--quota-reset", "daily",
         "--budget-usd", "20", "--budget-reset", "monthly", "--expires-at", "2031-01-01T00:00:00Z"],
        "PATCH",
        path,
        {"name": "ci", "models": [{"id": "gpt-5-4", "cap_usd": "5"}], "remove_models": ["mock"],
         "rate_limit": 30, "quota_reset": "daily", "budget_usd": "20", "budget_reset": "monthly",
         "expires_at": "2031-01-01T00:00:00Z"},
    )  # fmt: skip
    assert updated["name"] == "ci" and updated["rate_limit_per_minute"] == 30
    assert updated["models"] == [{"id": "gpt-5-4", "quota_cap_usd": 5.0, "quota_used_usd": 0.0}]
    assert updated["quota_reset"] == "daily"
    assert updated["budget"]["budget_usd"] == 20 and updated["budget"]["reset"] == "monthly"
    assert updated["expires_at"] == "2031-01-01T00:00:00Z"
    shown = await operator.ok(["keys", "show", str(key["id"])], "GET", path)
    assert shown == updated
    cleared = await operator.ok(
        ["keys", "update", str(key["id"]), "--budget-usd", "none", "--expires-at", "none",
         "--quota-reset", "none"],
        "PATCH",
        path,
        {"budget_usd": None, "expires_at": None, "quota_reset": "none"},
    )  # fmt: skip
    assert cleared["budget"] is None and cleared["expires_at"] is None
    assert cleared["quota_reset"] is None and cleared["name"] == "ci"


async def test_updates_are_audited_without_secrets(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    key = await make_key(ctx, "ada")
    await operator.ok(
        ["keys", "update", str(key["id"]), "--rate-limit", "7"],
        "PATCH",
        f"{KEYS}/{key['id']}",
        {"rate_limit": 7},
    )
    rolled = await operator.ok(
        ["keys", "roll", str(key["id"])], "POST", f"{KEYS}/{key['id']}/roll", {}
    )
    async with ctx.db.read() as conn:
        rows = (await conn.execute(sa.select(audit_log).order_by(audit_log.c.id))).all()
    actions = [(r.action, r.target_id) for r in rows]
    assert ("key.update", str(key["id"])) in actions and ("key.roll", str(key["id"])) in actions
    update = next(r for r in rows if r.action == "key.update")
    assert json.loads(update.before)["rate_limit_per_minute"] != 7
    assert json.loads(update.after)["rate_limit_per_minute"] == 7
    expected_actor = "admin-api" if operator.interface == "api" else "cli:"
    assert update.actor.startswith(expected_actor) and update.request_id
    everything = json.dumps([tuple(r) for r in rows], default=str)
    assert key["key"] not in everything and rolled["key"] not in everything


async def test_a_rolled_key_has_a_new_secret_and_the_same_id(
    operator: Operator, ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx, "ada")
    key = await make_key(ctx, "ada")
    rolled = await operator.ok(
        ["keys", "roll", str(key["id"]), "--grace-seconds", "0"],
        "POST",
        f"{KEYS}/{key['id']}/roll",
        {"grace_seconds": 0},
    )
    assert rolled["id"] == key["id"] and rolled["key"].startswith("bsk-")
    assert rolled["previous_valid_until"] is None
    assert (await me(client, key["key"])).status_code == 401
    mine = await me(client, rolled["key"])
    assert mine.status_code == 200 and mine.json()["id"] == key["id"]
    assert mine.json()["prefix"] == rolled["prefix"]
    kept = await operator.ok(
        ["keys", "roll", str(key["id"]), "--grace-seconds", "3600"],
        "POST",
        f"{KEYS}/{key['id']}/roll",
        {"grace_seconds": 3600},
    )
    assert kept["previous_valid_until"]
    assert (await me(client, rolled["key"])).status_code == 200  # in its grace period
    assert (await me(client, kept["key"])).status_code == 200


async def test_bad_updates_are_refused_and_change_nothing(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    key = await make_key(ctx, "ada", models=[("mock", None)])
    path = f"{KEYS}/{key['id']}"
    kid = str(key["id"])
    cases = [
        (["--rate-limit", "0"], {"rate_limit": 0}, "rate limit"),
        (["--model", "nope"], {"models": [{"id": "nope"}]}, "unknown model"),
        (["--remove-model", "mock"], {"remove_models": ["mock"]}, "at least one model"),
        (["--expires-at", "2031-01-01T00:00:00"], {"expires_at": "2031-01-01T00:00:00"}, "offset"),
        (["--expires-at", "soon"], {"expires_at": "soon"}, "ISO 8601"),
        (["--budget-reset", "hourly"], {"budget_reset": "hourly"}, ""),
    ]
    for flags, body, words in cases:
        message = await operator.fails(["keys", "update", kid, *flags], "PATCH", path, body)
        assert words in message, (flags, message)
    shown = await operator.ok(["keys", "show", kid], "GET", path)
    assert shown["rate_limit_per_minute"] == key["rate_limit_per_minute"]
    assert [m["id"] for m in shown["models"]] == ["mock"] and shown["expires_at"] is None


async def test_unknown_and_revoked_keys(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    missing = await operator.fails(["keys", "show", "999"], "GET", f"{KEYS}/999", status=404)
    assert "no key 999" in missing
    key = await make_key(ctx, "ada")
    await operator.ok(["keys", "revoke", str(key["id"])], "POST", f"{KEYS}/{key['id']}/revoke")
    refused = await operator.fails(
        ["keys", "roll", str(key["id"])], "POST", f"{KEYS}/{key['id']}/roll", {}, status=400
    )
    assert "revoked" in refused


async def test_keys_list_reads_as_a_table(operator: Operator, ctx: Context) -> None:
    await make_user(ctx, "ada")
    key = await make_key(ctx, "ada", name="laptop", models=[("gpt-5-4", 5_000_000)])
    code, out, _ = await operator.run_cli(["keys", "list"])
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:6] == ["ID", "NAME", "PREFIX", "OWNER", "ORG", "STATUS"]
    assert row.split()[:4] == [str(key["id"]), "laptop", key["prefix"], "ada"]
    assert "gpt-5-4 $0.00/$5.00" in row
