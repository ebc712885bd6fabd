"""The /me/webhooks and /me/notifications HTTP APIs, end to end through the app."""

from __future__ import annotations

import pytest

from bytespike.errors import InvalidRequest
from bytespike.settings import Settings
from bytespike.webhooks import urls
from bytespike.webhooks.transport import MAX_RESPONSE_BYTES, DeliveryError, HttpTransport
from tests.factories import add_member, make_key, make_org, make_user, top_up
from tests.integration.webhooks_support import dispatching, drain, loopback_settings, receiving


@pytest.fixture
def settings(db_url: str) -> Settings:
    return loopback_settings(db_url)


def auth(key: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def test_endpoint_lifecycle_test_event_rotation_and_retry(ctx, client):
    await make_user(ctx)
    ada = auth(await make_key(ctx))
    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        r = await client.post(
            "/api/v1/me/webhooks",
            json={
                "url": receiver.url + "/hook",
                "events": ["balance.topped_up"],
                "description": "ops",
            },
            headers=ada,
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["secret"].startswith("whsec_") and created["enabled"] is True
        receiver.secrets["/hook"] = created["secret"]
        endpoint = f"/api/v1/me/webhooks/{created['id']}"

        shown = (await client.get(endpoint, headers=ada)).json()
        assert "secret" not in shown and shown["description"] == "ops"
        listed = (await client.get("/api/v1/me/webhooks", headers=ada)).json()["data"]
        assert [e["id"] for e in listed] == [created["id"]]

        r = await client.post(f"{endpoint}/test", headers=ada)
        assert r.status_code == 202
        await drain(dispatcher)
        assert receiver.received[-1].verified
        assert receiver.received[-1].body["type"] == "webhook.test"

        rotated = (await client.post(f"{endpoint}/rotate-secret", headers=ada)).json()
        assert rotated["secret"] != created["secret"]
        receiver.secrets["/hook"] = rotated["secret"]
        receiver.statuses = [500]
        await top_up(ctx, "3", user="ada")
        await drain(dispatcher)
        assert receiver.received[-1].verified  # signed with the new secret

        history = (await client.get(f"{endpoint}/deliveries", headers=ada)).json()["data"]
        failed = history[0]
        assert failed["event_type"] == "balance.topped_up" and failed["status"] == "pending"
        [attempt] = failed["attempts"]
        assert attempt["status_code"] == 500 and attempt["error"] == "HTTP 500"
        assert attempt["latency_ms"] >= 0 and attempt["attempted_at"].endswith("Z")

        r = await client.post(f"{endpoint}/deliveries/{failed['id']}/retry", headers=ada)
        assert r.status_code == 202
        await drain(dispatcher)
        assert receiver.received[-1].webhook_id == receiver.received[-2].webhook_id
        history = (await client.get(f"{endpoint}/deliveries", headers=ada)).json()["data"]
        assert history[0]["status"] == "succeeded"

        r = await client.patch(
            endpoint, json={"events": ["key.created", "key.revoked"], "enabled": False}, headers=ada
        )
        assert r.json()["events"] == ["key.created", "key.revoked"] and not r.json()["enabled"]
        assert (await client.delete(endpoint, headers=ada)).json() == {
            "id": created["id"],
            "deleted": True,
        }
        assert (await client.get(endpoint, headers=ada)).status_code == 404


async def test_other_users_endpoints_are_invisible(ctx, client):
    await make_user(ctx, "ada")
    await make_user(ctx, "bob")
    ada, bob = auth(await make_key(ctx, "ada")), auth(await make_key(ctx, "bob"))
    body = {"url": "http://127.0.0.1:9/hook", "events": ["balance.topped_up"]}
    created = (await client.post("/api/v1/me/webhooks", json=body, headers=ada)).json()
    endpoint = f"/api/v1/me/webhooks/{created['id']}"
    assert (await client.get("/api/v1/me/webhooks", headers=bob)).json()["data"] == []
    for method, path in [
        ("GET", endpoint),
        ("PATCH", endpoint),
        ("DELETE", endpoint),
        ("POST", f"{endpoint}/test"),
        ("POST", f"{endpoint}/rotate-secret"),
        ("GET", f"{endpoint}/deliveries"),
        ("POST", f"{endpoint}/deliveries/1/retry"),
    ]:
        json = {"enabled": False} if method == "PATCH" else None
        r = await client.request(method, path, json=json, headers=bob)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["type"] == "not_found_error"
    assert (await client.get(endpoint, headers=ada)).json()["enabled"] is True


async def test_org_endpoints_belong_to_the_org_and_its_managers(ctx, client):
    for name in ("ada", "amy", "max", "zed"):
        await make_user(ctx, name, tier="enterprise")
    await make_org(ctx, "Dosia AI")
    await make_org(ctx, "Other Co")
    await add_member(ctx, "Dosia AI", "ada", "owner")
    await add_member(ctx, "Dosia AI", "amy", "admin")
    await add_member(ctx, "Dosia AI", "max", "member")
    await add_member(ctx, "Other Co", "zed", "owner")
    ada, amy, max_, zed = [auth(await make_key(ctx, n)) for n in ("ada", "amy", "max", "zed")]
    body = {"url": "http://127.0.0.1:9/hook", "events": ["org.paused"]}
    created = (await client.post("/api/v1/me/webhooks", json=body, headers=ada)).json()
    endpoint = f"/api/v1/me/webhooks/{created['id']}"
    assert (await client.get(endpoint, headers=amy)).status_code == 200  # same org, admin
    r = await client.get(endpoint, headers=max_)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert (await client.post("/api/v1/me/webhooks", json=body, headers=max_)).status_code == 403
    assert (await client.get(endpoint, headers=zed)).status_code == 404  # another org
    assert (await client.delete(endpoint, headers=zed)).status_code == 404


async def test_endpoint_validation(ctx, client):
    await make_user(ctx)
    ada = auth(await make_key(ctx))
    for body in [
        {"url": "ftp://127.0.0.1/x", "events": ["balance.topped_up"]},
        {"url": "http://127.0.0.1/x", "events": []},
        {"url": "http://127.0.0.1/x", "events": ["nope"]},
        {"url": "http://127.0.0.1/x", "events": ["webhook.test"]},
        {"url": "http://127.0.0.1/x"},
        {"url": "http://user:pw@127.0.0.1/x", "events": ["balance.topped_up"]},
    ]:
        r = await client.post("/api/v1/me/webhooks", json=body, headers=ada)
        assert r.status_code == 400, body
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = await client.post("/api/v1/me/webhooks", json={"url": "x", "events": []})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://127.1/hook",
    ],
)
async def test_urls_to_private_addresses_are_refused_without_the_dev_setting(url):
    with pytest.raises(InvalidRequest):
        await urls.check(url, allow_private=False)


async def test_public_https_url_is_accepted():
    await urls.check("https://8.8.8.8/hook", allow_private=False)


async def test_delivery_rechecks_addresses_and_caps_bodies_and_times_out():
    async with receiving() as receiver:
        strict = HttpTransport(timeout=2, allow_private=False)
        loose = HttpTransport(timeout=0.5, allow_private=True)
        try:
            port = receiver.url.rsplit(":", 1)[1]
            for target in (receiver.url, f"http://localhost:{port}"):
                with pytest.raises(DeliveryError):
                    await strict.post(target + "/x", b"{}", {})
            assert receiver.received == []
            receiver.body = b"x" * (1 << 20)
            response = await loose.post(receiver.url + "/x", b"{}", {"webhook-id": "msg_1"})
            assert response.status == 200 and len(response.body) == MAX_RESPONSE_BYTES
            receiver.delay = 2
            with pytest.raises(DeliveryError, match="timed out"):
                await loose.post(receiver.url + "/x", b"{}", {"webhook-id": "msg_2"})
        finally:
            await strict.close()
            await loose.close()


async def test_notifications_read_and_set_for_an_individual(ctx, client):
    await make_user(ctx)
    await top_up(ctx, "31.4", user="ada")
    ada = auth(await make_key(ctx))
    r = await client.get("/api/v1/me/notifications", headers=ada)
    assert r.status_code == 200
    assert r.json()["low_balance_threshold_usd"] == 5.0
    assert r.json()["balance"]["available_usd"] == 31.4
    r = await client.put(
        "/api/v1/me/notifications", json={"low_balance_threshold_usd": 40}, headers=ada
    )
    assert r.status_code == 200, r.text
    assert r.json()["low_balance_threshold_usd"] == 40.0
    assert r.json()["balance"]["low_balance_flagged"] is True
    account = (await client.get("/api/v1/me/account", headers=ada)).json()
    assert account["balance"] == r.json()["balance"]
    r = await client.put(
        "/api/v1/me/notifications", json={"low_balance_threshold_usd": 0.25}, headers=ada
    )
    assert r.json()["low_balance_threshold_usd"] == 0.25


@pytest.mark.parametrize(
    "body",
    [
        {"low_balance_threshold_usd": -1},
        {"low_balance_threshold_usd": "5"},
        {"low_balance_threshold_usd": True},
        {"low_balance_threshold_usd": None},
        {"low_balance_threshold_usd": 1.0000001},
        {"low_balance_threshold_usd": 1e12},
        {},
        {"low_balance_threshold_usd": 5, "extra": 1},
    ],
)
async def test_notifications_reject_anything_but_a_non_negative_amount(ctx, client, body):
    await make_user(ctx)
    ada = auth(await make_key(ctx))
    r = await client.put("/api/v1/me/notifications", json=body, headers=ada)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_org_threshold_needs_owner_or_admin(ctx, client):
    for name in ("ada", "amy", "max"):
        await make_user(ctx, name, tier="enterprise")
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", "owner")
    await add_member(ctx, "Dosia AI", "amy", "admin")
    await add_member(ctx, "Dosia AI", "max", "member")
    body = {"low_balance_threshold_usd": 12}
    for name, status in (("ada", 200), ("amy", 200), ("max", 403)):
        key = auth(await make_key(ctx, name))
        r = await client.put("/api/v1/me/notifications", json=body, headers=key)
        assert r.status_code == status, (name, r.text)
        read = await client.get("/api/v1/me/notifications", headers=key)
        assert read.status_code == 200 and read.json()["low_balance_threshold_usd"] == 12.0
    r = await client.put("/api/v1/me/notifications", json=body)
    assert r.status_code == 401
