"""The dashboard's payload is the API's, keys made and changed in the console work on the
API, the threshold set here moves low_balance_flagged there, and roles hold: each viewer
sees and changes only what the API would let them."""

from __future__ import annotations

import re

import httpx

from bytespike.context import Context
from bytespike.keys import service as keys
from tests.console.support import csrf_of, payload_of, person, post_form, sign_in
from tests.factories import add_member, make_key, make_org, top_up


async def _account(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.get("/api/v1/me/account", headers={"Authorization": f"Bearer {secret}"})


async def test_the_dashboard_payload_is_the_apis(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "admin")
    await top_up(ctx, "31.40", user="ada")
    first = await make_key(ctx, "ada", name="laptop", models=[("mock", 5_000_000)])
    second = await make_key(ctx, "ada", name="ci", org="Dosia AI")
    await sign_in(client, "ada")

    page = await client.get("/console/")
    assert page.status_code == 200
    # No key used yet: the newest is shown.
    assert payload_of(page.text) == (await _account(client, second["key"])).content
    assert "$31.40" in page.text and "Dosia AI" in page.text

    chosen = await client.get("/console/", params={"key": first["id"]})
    assert payload_of(chosen.text) == (await _account(client, first["key"])).content
    assert "$5.00" in chosen.text  # the cap, as money


async def test_the_dashboard_defaults_to_the_key_used_last(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    used = await make_key(ctx, "ada", name="used")
    await make_key(ctx, "ada", name="newer")
    call = await client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {used['key']}"},
        json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert call.status_code == 200
    await sign_in(client, "ada")
    page = await client.get("/console/")
    selected = re.search(r'<option value="(\d+)" selected>', page.text)
    assert selected and selected.group(1) == str(used["id"])
    assert payload_of(page.text) == (await _account(client, used["key"])).content
    assert "[mock]" not in page.text and "mock</code>" in page.text  # the latest call
    assert '<script type="application/json" id="spend-data">' in page.text


async def test_another_users_key_is_not_found(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    await person(ctx, "bob")
    theirs = await make_key(ctx, "bob")
    await sign_in(client, "ada")
    assert (await client.get("/console/", params={"key": theirs["id"]})).status_code == 404
    assert (await client.get(f"/console/keys/{theirs['id']}")).status_code == 404
    empty = await client.get("/console/")
    assert "No key yet" in empty.text and "account-payload" not in empty.text


async def test_a_key_made_in_the_console_works_and_changes(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    await sign_in(client, "ada")
    made = await post_form(
        client,
        "/console/keys",
        {"name": "laptop", "model": ["mock", "gpt-5-4"], "cap_gpt-5-4": "50", "rate_limit": "120"},
    )
    secret = re.search(r'id="new-key-secret">(bsk-[^<]+)<', made.text)
    assert secret, made.text[:3000]
    account = (await _account(client, secret.group(1))).json()
    assert [(m["id"], m["quota_cap_usd"]) for m in account["allowed_models"]] == [
        ("gpt-5-4", 50.0),
        ("mock", None),
    ]
    key_id = int(re.search(r"Key (\d+) created", made.text).group(1))  # type: ignore[union-attr]

    edit_path = f"/console/keys/{key_id}"
    page = await client.get(edit_path)
    form = {
        "csrf_token": csrf_of(page.text),
        "action": "update",
        "name": "laptop",
        "rate_limit": "120",
        "model": ["mock"],
        "budget_usd": "20",
        "budget_reset": "monthly",
        "quota_reset": "",
        "expires_at": "2030-01-01",
    }
    saved = await client.post(edit_path, data=form)
    assert "Saved." in saved.text, saved.text[:3000]
    shown = await keys.show(ctx, key_id)
    assert [m["id"] for m in shown["models"]] == ["mock"]
    assert shown["budget"]["budget_usd"] == 20.0 and shown["budget"]["reset"] == "monthly"
    assert shown["expires_at"] == "2030-01-01T00:00:00Z"
    again = await client.post(edit_path, data=form)  # the same form again changes nothing
    assert (
        "Saved." in again.text
        and (await keys.show(ctx, key_id))["updated_at"] == shown["updated_at"]
    )

    rolled = await client.post(
        edit_path, data={"csrf_token": form["csrf_token"], "action": "roll", "grace_seconds": "0"}
    )
    new_secret = re.search(r'id="new-key-secret">(bsk-[^<]+)<', rolled.text)
    assert new_secret and new_secret.group(1) != secret.group(1)
    assert (await _account(client, secret.group(1))).status_code == 401
    assert (await _account(client, new_secret.group(1))).status_code == 200

    revoked = await client.post(
        edit_path, data={"csrf_token": form["csrf_token"], "action": "revoke"}
    )
    assert "revoked" in revoked.text
    assert (await _account(client, new_secret.group(1))).status_code == 401


async def test_the_threshold_moves_the_flag_in_the_api(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    await top_up(ctx, "31.40", user="ada")
    key = await make_key(ctx, "ada")
    await sign_in(client, "ada")
    assert (await _account(client, key["key"])).json()["balance"]["low_balance_flagged"] is False
    saved = await post_form(
        client, "/console/account/notifications", {"action": "threshold", "threshold_usd": "40"}
    )
    assert "Threshold saved." in saved.text
    balance = (await _account(client, key["key"])).json()["balance"]
    assert balance["low_balance_flagged"] is True and balance["low_balance_threshold_usd"] == 40.0
    bad = await post_form(
        client, "/console/account/notifications", {"action": "threshold", "threshold_usd": "x"}
    )
    assert "threshold_usd" in bad.text and 'class="error"' in bad.text


async def test_webhook_endpoints(ctx: Context, client: httpx.AsyncClient) -> None:
    ctx.settings.webhook_allow_private = True
    await person(ctx, "ada")
    await sign_in(client, "ada")
    made = await post_form(
        client,
        "/console/account/notifications",
        {
            "action": "register",
            "url": "http://127.0.0.1:9/hook",
            "events": ["system.balance.notify.dispatched", "key.created"],
        },
    )
    assert re.search(r'id="new-webhook-secret">whsec_', made.text), made.text[:3000]
    path = "/console/account/notifications/webhooks/1"
    page = await client.get(path)
    assert page.status_code == 200 and "No deliveries yet." in page.text
    token = csrf_of(page.text)
    tested = await client.post(path, data={"csrf_token": token, "action": "test"})
    assert "Test event" in tested.text and "webhook.test" in tested.text
    rotated = await client.post(path, data={"csrf_token": token, "action": "rotate"})
    assert 'id="new-webhook-secret">whsec_' in rotated.text
    delivery = re.search(r'name="delivery_id" value="(\d+)"', tested.text)
    assert delivery
    retried = await client.post(
        path, data={"csrf_token": token, "action": "retry", "delivery_id": delivery.group(1)}
    )
    assert "will be retried" in retried.text
    edited = await client.post(
        path,
        data={
            "csrf_token": token,
            "action": "update",
            "url": "http://127.0.0.1:9/other",
            "events": ["key.revoked"],
            "enabled": "on",
        },
    )
    assert "Saved." in edited.text and "http://127.0.0.1:9/other" in edited.text


async def test_org_roles(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    await person(ctx, "cy", tier="enterprise")
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "owner")
    await add_member(ctx, "Dosia AI", "cy", "member")
    cys = await make_key(ctx, "cy", org="Dosia AI")

    await sign_in(client, "cy")
    page = await client.get("/console/account/notifications")
    assert "owners and admins set it" in page.text and "threshold_usd" not in page.text
    refused = await client.post(
        "/console/account/notifications",
        data={"csrf_token": csrf_of(page.text), "action": "threshold", "threshold_usd": "1"},
    )
    assert refused.status_code == 200 and "only the org&#39;s owners and admins" in refused.text
    assert (await client.get("/console/admin/")).status_code == 403

    await client.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    await sign_in(client, "ada")
    their_key = await client.get(f"/console/keys/{cys['id']}")  # the org's key: the owner's too
    assert their_key.status_code == 200
    listing = await client.get("/console/keys")
    assert "Other members&#39; keys in Dosia AI" in listing.text


async def test_usage_page_and_csv(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada", name="laptop")
    for text in ("one", "two"):
        call = await client.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key['key']}"},
            json={"model": "mock", "messages": [{"role": "user", "content": text}]},
        )
        assert call.status_code == 200
    await sign_in(client, "ada")
    page = await client.get("/console/usage")
    assert page.status_code == 200, page.text[-3000:]
    assert "Latest calls" in page.text and "laptop" in page.text
    assert page.text.count("<code>mock</code>") >= 3  # by model, and each call
    ranged = await client.get("/console/usage", params={"since": "2026-03-10", "model": "mock"})
    assert ranged.status_code == 200 and '<h2 id="calls-h">Calls</h2>' in ranged.text
    exported = await client.get("/console/usage.csv", params={"model": "mock"})
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0].startswith("id,created_at,key_id,model") and len(lines) == 3
    bad = await client.get("/console/usage", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since must be a date" in bad.text


async def test_the_admin_area(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "root", operator=True)
    await person(ctx, "bob")
    bobs = await make_key(ctx, "bob")
    await sign_in(client, "root")
    made = await post_form(
        client,
        "/console/admin/users",
        {"action": "create", "username": "cy", "email": "cy@dosia.ai", "tier": "individual"},
    )
    assert "Created cy" in made.text
    invited = await post_form(client, "/console/admin/users", {"action": "invite", "user": "cy"})
    assert 'id="invite-url">http://127.0.0.1:8080/console/invite?token=' in invited.text
    suspended = await post_form(
        client, "/console/admin/users", {"action": "suspend", "user": "bob"}
    )
    assert "bob: suspended." in suspended.text
    org = await post_form(client, "/console/admin/orgs", {"action": "create", "name": "Dosia AI"})
    assert "Created org Dosia AI" in org.text
    paused = await post_form(client, "/console/admin/orgs", {"action": "pause", "org": "1"})
    assert "paused" in paused.text
    topped = await post_form(
        client, "/console/admin/wallets", {"action": "topup", "org": "Dosia AI", "usd": "100"}
    )
    assert "available now $100.00" in topped.text, topped.text[-2000:]
    adjusted = await post_form(
        client,
        "/console/admin/wallets",
        {"action": "adjust", "org": "Dosia AI", "usd": "-20", "reason": "goodwill taken back"},
    )
    assert "available now $80.00" in adjusted.text
    ledger = await client.get("/console/admin/ledger", params={"org": "Dosia AI"})
    assert "goodwill taken back" in ledger.text
    verified = await client.post(
        "/console/admin/ledger?org=Dosia%20AI", data={"csrf_token": csrf_of(ledger.text)}
    )
    assert "ok: every invariant holds" in verified.text
    revoked = await post_form(client, "/console/admin/keys", {"key_id": str(bobs["id"])})
    assert f"Key {bobs['id']} revoked." in revoked.text
    for path in ("/console/admin/", "/console/admin/audit", "/console/admin/models"):
        assert (await client.get(path)).status_code == 200
    audit = await client.get("/console/admin/audit")
    assert "console:root" in audit.text and "credits.adjust" in audit.text
    from bytespike.audit import service as audit_log

    entries = (await audit_log.list_entries(ctx))["data"]
    assert {e["actor"] for e in entries[:8]} == {"console:root"}
