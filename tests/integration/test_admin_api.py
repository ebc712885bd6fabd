"""The admin HTTP API (/api/v1/admin/...): every endpoint, its guard and its errors.

Runs on SQLite and PostgreSQL. Effects are checked through what a key holder sees on
GET /api/v1/me/account, not through the admin API's own echo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bytespike.app import create_app
from bytespike.context import Context
from bytespike.ratelimit.memory import MemoryRateLimiter

ADMIN = "/api/v1/admin"
ACCOUNT = "/api/v1/me/account"


def assert_error(response: httpx.Response, status: int, type_: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["type"] == type_
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


class Admin:
    """The admin API as an operator's script uses it."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(ADMIN + path, json=body, headers=self.headers)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.client.put(ADMIN + path, json=body, headers=self.headers)

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await getattr(self, method)(path, body)
        assert response.status_code == status, response.text
        return response.json()

    async def account(self, key: str) -> Any:
        response = await self.client.get(ACCOUNT, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def admin(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Admin:
    return Admin(client, admin_headers)


async def seed(admin: Admin) -> dict[str, Any]:
    """ada (individual), bob (enterprise), org Dosia AI with both in it."""
    ada = await admin.ok("post", "/users", {"username": "ada", "email": "ada@dosia.ai"}, 201)
    bob = await admin.ok(
        "post", "/users", {"username": "bob", "email": "bob@dosia.ai", "tier": "enterprise"}, 201
    )
    org = await admin.ok("post", "/orgs", {"name": "Dosia AI"}, 201)
    await admin.ok("post", "/orgs/Dosia AI/members", {"username": "ada", "role": "admin"})
    await admin.ok("post", f"/orgs/{org['id']}/members", {"username": "bob", "role": "member"})
    return {"ada": ada, "bob": bob, "org": org}


# --- every endpoint --------------------------------------------------------------------------


async def test_create_user(admin: Admin) -> None:
    ada = await admin.ok("post", "/users", {"username": "ada", "email": "ada@dosia.ai"}, 201)
    bob = await admin.ok(
        "post", "/users", {"username": "bob", "email": "b@x.io", "tier": "enterprise"}, 201
    )

    assert set(ada) == {"id", "username", "email", "created_at", "tier"}
    assert (ada["username"], ada["email"], ada["tier"]) == ("ada", "ada@dosia.ai", "individual")
    assert ada["created_at"] == "2026-03-10T12:00:00Z"  # the test's clock
    assert (bob["tier"], bob["id"]) == ("enterprise", ada["id"] + 1)


async def test_create_org_and_add_members_by_name_or_id(admin: Admin) -> None:
    org = await admin.ok("post", "/orgs", {"name": "Dosia AI"}, 201)
    await admin.ok("post", "/users", {"username": "ada", "email": "ada@dosia.ai"}, 201)
    await admin.ok("post", "/users", {"username": "cy", "email": "cy@dosia.ai"}, 201)

    by_name = await admin.ok("post", "/orgs/Dosia AI/members", {"username": "ada", "role": "owner"})
    by_id = await admin.ok(
        "post", f"/orgs/{org['id']}/members", {"username": "cy", "role": "member"}
    )
    promoted = await admin.ok(
        "post", f"/orgs/{org['id']}/members", {"username": "cy", "role": "admin"}
    )
    key = await admin.ok("post", "/keys", {"user": "cy", "org": "Dosia AI"}, 201)

    assert org == {
        "id": org["id"],
        "name": "Dosia AI",
        "paused": False,
        "created_at": "2026-03-10T12:00:00Z",
    }
    assert (by_name["id"], by_name["org"], by_name["role"]) == (org["id"], "Dosia AI", "owner")
    assert (by_id["username"], by_id["role"]) == ("cy", "member")
    assert promoted["role"] == "admin"
    assert (await admin.account(key["key"]))["org"] == {
        "id": org["id"],
        "name": "Dosia AI",
        "role": "admin",
    }


async def test_pause_and_resume(admin: Admin) -> None:
    org = (await seed(admin))["org"]
    key = await admin.ok("post", "/keys", {"user": "ada", "org": "Dosia AI"}, 201)
    account = {"Authorization": f"Bearer {key['key']}"}

    paused = await admin.ok("post", f"/orgs/{org['id']}/pause")
    refused = await admin.client.get(ACCOUNT, headers=account)
    paused_again = await admin.ok("post", "/orgs/Dosia AI/pause")
    resumed = await admin.ok("post", "/orgs/Dosia AI/resume")
    allowed = await admin.client.get(ACCOUNT, headers=account)

    assert (paused["id"], paused["paused"], paused_again["paused"]) == (org["id"], True, True)
    assert_error(refused, 403, "permission_error")
    assert resumed["paused"] is False
    assert allowed.status_code == 200


async def test_top_up_user_and_org_wallets(admin: Admin) -> None:
    await seed(admin)
    ada_key = await admin.ok("post", "/keys", {"user": "ada"}, 201)
    bob_key = await admin.ok("post", "/keys", {"user": "bob"}, 201)

    user_topup = await admin.ok("post", "/credits/topup", {"user": "ada", "usd": "19.99"})
    json_number = await admin.ok("post", "/credits/topup", {"user": "ada", "usd": 0.01})
    org_topup = await admin.ok("post", "/credits/topup", {"org": "Dosia AI", "usd": 250})

    assert user_topup["amount_usd"] == 19.99 and user_topup["applied"] is True
    assert isinstance(user_topup["id"], int)
    assert json_number["balance"]["available_usd"] == 20.0
    assert org_topup["balance"]["lifetime_topup_usd"] == 250.0
    assert (await admin.account(ada_key["key"]))["balance"]["available_usd"] == 20.0
    assert (await admin.account(bob_key["key"]))["balance"]["available_usd"] == 250.0


async def test_top_up_reference_is_applied_once(admin: Admin) -> None:
    await seed(admin)
    key = await admin.ok("post", "/keys", {"user": "ada"}, 201)
    body = {"user": "ada", "usd": "250", "reference": "pay_123"}

    first = await admin.ok("post", "/credits/topup", body)
    retried = await admin.ok("post", "/credits/topup", body)
    different_amount = await admin.post("/credits/topup", {**body, "usd": "251"})
    different_wallet = await admin.post(
        "/credits/topup", {"org": "Dosia AI", "usd": "250", "reference": "pay_123"}
    )

    assert first["applied"] is True
    assert retried["applied"] is False
    assert retried["id"] == first["id"]
    assert retried["balance"]["available_usd"] == 250.0
    assert_error(different_amount, 409, "conflict_error")
    assert_error(different_wallet, 409, "conflict_error")
    assert (await admin.account(key["key"]))["balance"]["lifetime_topup_usd"] == 250.0


async def test_top_up_past_the_maximum_balance_is_400_and_writes_nothing(admin: Admin) -> None:
    await seed(admin)
    key = await admin.ok("post", "/keys", {"user": "ada"}, 201)
    await admin.ok("post", "/credits/topup", {"user": "ada", "usd": "250"})

    refused = await admin.post(
        "/credits/topup", {"user": "ada", "usd": 1_000_000_000, "reference": "wire-9"}
    )
    filled = await admin.ok(
        "post", "/credits/topup", {"user": "ada", "usd": "999999750", "reference": "wire-9"}
    )
    one_micro = await admin.post("/credits/topup", {"user": "ada", "usd": "0.000001"})

    message = assert_error(refused, 400, "invalid_request_error")
    assert refused.json()["error"]["code"] == "balance_limit_exceeded"
    assert "maximum balance of 1000000000.00 USD" in message
    assert filled["applied"] is True  # the refused reference was not used up
    assert filled["balance"]["available_usd"] == 1_000_000_000.0
    assert_error(one_micro, 400, "invalid_request_error")
    balance = (await admin.account(key["key"]))["balance"]
    assert balance["available_usd"] == balance["lifetime_topup_usd"] == 1_000_000_000.0


async def test_an_org_ref_that_could_mean_two_orgs_is_400_and_prefixes_say_which(
    admin: Admin,
) -> None:
    await seed(admin)  # Dosia AI is org 1
    named_one = await admin.ok("post", "/orgs", {"name": "1"}, 201)
    assert named_one["id"] == 2

    refusals = [
        await admin.post("/orgs/1/pause"),
        await admin.post("/orgs/1/members", {"username": "ada", "role": "member"}),
        await admin.post("/credits/topup", {"org": "1", "usd": "5"}),
        await admin.put("/notifications", {"org": "1", "threshold_usd": "5"}),
        await admin.post("/keys", {"user": "ada", "org": "1"}),
    ]
    by_name = await admin.ok("post", "/orgs/name:1/pause")
    by_id = await admin.ok("post", "/orgs/id:1/pause")
    spaced = await admin.ok("post", "/orgs/name:Dosia%20AI/resume")
    plain = await admin.ok("post", "/orgs/2/resume")  # no org is named 2: not ambiguous
    paid = await admin.ok("post", "/credits/topup", {"org": "name:1", "usd": "5"})
    member = await admin.ok("post", "/orgs/id:2/members", {"username": "ada", "role": "owner"})
    key = await admin.ok("post", "/keys", {"user": "ada", "org": "name:1"}, 201)
    prefixed_name = await admin.post("/orgs", {"name": "name:x"})

    for refused in refusals:
        message = assert_error(refused, 400, "invalid_request_error")
        assert refused.json()["error"]["code"] == "ambiguous_org"
        assert "'Dosia AI'" in message and "say id:1 or name:1" in message
    assert (by_name["id"], by_name["paused"], by_id["id"], by_id["paused"]) == (2, True, 1, True)
    assert (spaced["id"], spaced["paused"], plain["id"], plain["paused"]) == (1, False, 2, False)
    assert paid["balance"]["available_usd"] == 5.0
    assert (member["id"], member["role"]) == (2, "owner")
    assert (await admin.account(key["key"]))["org"] == {"id": 2, "name": "1", "role": "owner"}
    assert "cannot start with" in assert_error(prefixed_name, 400, "invalid_request_error")


async def test_set_notification_threshold(admin: Admin) -> None:
    await seed(admin)
    ada_key = await admin.ok("post", "/keys", {"user": "ada"}, 201)
    bob_key = await admin.ok("post", "/keys", {"user": "bob"}, 201)
    await admin.ok("post", "/credits/topup", {"user": "ada", "usd": "7.5"})

    user_threshold = await admin.ok(
        "put", "/notifications", {"user": "ada", "threshold_usd": "7.5"}
    )
    org_threshold = await admin.ok("put", "/notifications", {"org": "Dosia AI", "threshold_usd": 0})

    assert user_threshold["low_balance_threshold_usd"] == 7.5
    assert user_threshold["low_balance_flagged"] is True
    assert org_threshold["low_balance_threshold_usd"] == 0.0
    ada = (await admin.account(ada_key["key"]))["balance"]
    assert (ada["low_balance_threshold_usd"], ada["low_balance_flagged"]) == (7.5, True)
    bob = (await admin.account(bob_key["key"]))["balance"]
    assert (bob["low_balance_threshold_usd"], bob["low_balance_flagged"]) == (0.0, True)


async def test_create_key_with_roster_caps_limit_and_reset(admin: Admin) -> None:
    ada = (await seed(admin))["ada"]
    created = await admin.ok(
        "post",
        "/keys",
        {
            "user": "ada",
            "org": "Dosia AI",
            "name": "ci",
            "models": [{"id": "gpt-5-4", "cap_usd": "50"}, {"id": "claude-sonnet-4-6"}],
            "rate_limit": 3,
            "quota_reset": "monthly",
        },
        201,
    )

    assert created["key"].startswith("bsk-") and len(created["key"]) == 47
    assert created["prefix"] == created["key"][:12]
    assert (created["user_id"], created["username"], created["name"]) == (ada["id"], "ada", "ci")
    assert (created["rate_limit_per_minute"], created["quota_reset"]) == (3, "monthly")
    assert created["models"] == [
        {"id": "claude-sonnet-4-6", "quota_cap_usd": None},
        {"id": "gpt-5-4", "quota_cap_usd": 50.0},
    ]
    response = await admin.client.get(ACCOUNT, headers={"x-api-key": created["key"]})
    assert response.headers["x-ratelimit-limit-requests"] == "3"
    assert response.json()["allowed_models"] == [
        {"id": "claude-sonnet-4-6", "quota_used_usd": 0.0, "quota_cap_usd": None},
        {"id": "gpt-5-4", "quota_used_usd": 0.0, "quota_cap_usd": 50.0},
    ]


async def test_create_key_defaults(admin: Admin) -> None:
    await seed(admin)

    created = await admin.ok("post", "/keys", {"user": "ada"}, 201)

    assert created["org_id"] is None
    assert (created["rate_limit_per_minute"], created["quota_reset"]) == (600, None)
    assert [m["id"] for m in created["models"]] == [
        "claude-sonnet-4-6",
        "gpt-5-4",
        "gemini-3-1-pro",
        "mock",
        "text-embedding-3-small",
        "gemini-embedding-001",
    ]
    assert all(m["quota_cap_usd"] is None for m in created["models"])


async def test_revoke_key(admin: Admin) -> None:
    await seed(admin)
    key = await admin.ok("post", "/keys", {"user": "ada"}, 201)

    revoked = await admin.ok("post", f"/keys/{key['id']}/revoke")
    again = await admin.ok("post", f"/keys/{key['id']}/revoke")

    assert revoked == {"id": key["id"], "revoked": True, "already_revoked": False}
    assert again["already_revoked"] is True
    refused = await admin.client.get(ACCOUNT, headers={"Authorization": f"Bearer {key['key']}"})
    assert_error(refused, 401, "authentication_error")


# --- the guard -------------------------------------------------------------------------------


ENDPOINTS = [
    ("post", "/users", {"username": "ada", "email": "ada@dosia.ai"}),
    ("post", "/orgs", {"name": "Dosia AI"}),
    ("post", "/orgs/1/members", {"username": "ada", "role": "owner"}),
    ("post", "/orgs/1/pause", None),
    ("post", "/orgs/1/resume", None),
    ("post", "/credits/topup", {"user": "ada", "usd": "1"}),
    ("put", "/notifications", {"user": "ada", "threshold_usd": "1"}),
    ("post", "/keys", {"user": "ada"}),
    ("post", "/keys/1/revoke", None),
]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong-token"),
        pytest.param({"Authorization": "Basic test-admin-token"}, id="wrong-scheme"),
        pytest.param({"Authorization": "Bearer test-admin-token-and-more"}, id="longer-token"),
        pytest.param({"x-api-key": "test-admin-token"}, id="x-api-key"),
        pytest.param({"Authorization": b"Bearer \xff\xfe"}, id="non-ascii"),
        pytest.param({"Authorization": "Bearer " + "t" * 10_240}, id="huge"),
    ],
)
async def test_every_endpoint_refuses_without_the_admin_token(
    client: httpx.AsyncClient, headers: dict[str, Any]
) -> None:
    for method, path, body in ENDPOINTS:
        response = await client.request(method, ADMIN + path, json=body, headers=headers)
        assert_error(response, 401, "authentication_error")
    # Nothing was written: with the token, the first user can still be created.
    ok = await client.post(
        ADMIN + "/users",
        json={"username": "ada", "email": "ada@dosia.ai"},
        headers={"Authorization": "Bearer test-admin-token"},
    )
    assert ok.status_code == 201


@pytest.fixture
async def tokenless_client(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    settings = ctx.settings.model_copy(update={"admin_token": None})
    app = create_app(
        settings,
        ctx=dataclasses.replace(ctx, settings=settings),
        limiter=MemoryRateLimiter(),
        background=False,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bytespike.test") as c:
        yield c


@pytest.mark.parametrize("token", ["", "None", "test-admin-token"])
async def test_admin_api_is_disabled_when_no_token_is_configured(
    tokenless_client: httpx.AsyncClient, token: str
) -> None:
    for method, path, body in ENDPOINTS:
        response = await tokenless_client.request(
            method, ADMIN + path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        message = assert_error(response, 401, "authentication_error")
        assert "BYTESPIKE_ADMIN_TOKEN" in message


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usd", "why"),
    [
        ("-5", "negative"),
        (-5, "negative"),
        ("0", "zero"),
        ("abc", "garbage"),
        ("", "empty"),
        (None, "null"),
        (True, "boolean"),
        ("1.0000001", "finer than a micro-dollar"),
        (0.0000001, "finer than a micro-dollar"),
        ("NaN", "not finite"),
        ("Infinity", "not finite"),
        ("1e30", "too large"),
        ([], "not a number"),
    ],
)
async def test_top_up_refuses_amounts_that_are_not_money(admin: Admin, usd: Any, why: str) -> None:
    await seed(admin)
    key = await admin.ok("post", "/keys", {"user": "ada"}, 201)

    response = await admin.post("/credits/topup", {"user": "ada", "usd": usd})

    assert_error(response, 400, "invalid_request_error")
    assert (await admin.account(key["key"]))["balance"]["lifetime_topup_usd"] == 0.0, why


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/users", {"username": "eve", "email": "not-an-email"}),
        ("post", "/users", {"username": "eve", "email": "eve@dosia.ai", "tier": "gold"}),
        ("post", "/users", {"username": "bad name", "email": "eve@dosia.ai"}),
        ("post", "/users", {"username": "", "email": "eve@dosia.ai"}),
        ("post", "/users", {"email": "eve@dosia.ai"}),
        ("post", "/orgs", {"name": "   "}),
        ("post", "/orgs", {"name": "x" * 201}),
        ("post", "/orgs/Dosia AI/members", {"username": "ada", "role": "superuser"}),
        ("post", "/orgs/Dosia AI/members", {"username": "ada"}),
        ("post", "/credits/topup", {"usd": "5"}),
        ("post", "/credits/topup", {"user": "ada", "org": "Dosia AI", "usd": "5"}),
        ("post", "/credits/topup", {"user": "bob", "usd": "5"}),  # enterprise: org-billed
        ("put", "/notifications", {"user": "ada", "threshold_usd": "-1"}),
        ("put", "/notifications", {"user": "ada", "threshold_usd": "1.0000001"}),
        ("put", "/notifications", {"user": "ada", "threshold_usd": "five"}),
        ("post", "/keys", {"user": "ada", "models": [{"id": "gpt-9"}]}),
        ("post", "/keys", {"user": "ada", "models": [{"id": "gpt-5-4"}, {"id": "gpt-5-4"}]}),
        ("post", "/keys", {"user": "ada", "models": [{"id": "gpt-5-4", "cap_usd": "-1"}]}),
        ("post", "/keys", {"user": "ada", "models": [{"id": "gpt-5-4", "cap_usd": "0.1234567"}]}),
        ("post", "/keys", {"user": "ada", "rate_limit": 0}),
        ("post", "/keys", {"user": "ada", "rate_limit": "lots"}),
        ("post", "/keys", {"user": "ada", "quota_reset": "hourly"}),
        ("post", "/keys", {"user": "ada", "org": "Other"}),  # ada is not in Other
        ("post", "/keys", {"user": "eve"}),  # enterprise and in no org
    ],
)
async def test_bad_bodies_get_400_in_the_envelope(
    admin: Admin, method: str, path: str, body: Any
) -> None:
    await seed(admin)
    await admin.ok("post", "/orgs", {"name": "Other"}, 201)
    await admin.ok(
        "post", "/users", {"username": "eve", "email": "e@x.io", "tier": "enterprise"}, 201
    )

    response = await getattr(admin, method)(path, body)

    assert_error(response, 400, "invalid_request_error")


async def test_malformed_json_gets_400_in_the_envelope(admin: Admin) -> None:
    response = await admin.client.post(
        ADMIN + "/users",
        content=b'{"username": "ada",',
        headers={**admin.headers, "content-type": "application/json"},
    )

    assert_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/orgs/Nowhere/members", {"username": "ada", "role": "owner"}),
        ("post", "/orgs/999/members", {"username": "ada", "role": "owner"}),
        ("post", "/orgs/Dosia AI/members", {"username": "nobody", "role": "owner"}),
        ("post", "/orgs/Nowhere/pause", None),
        ("post", "/orgs/999/resume", None),
        ("post", "/credits/topup", {"user": "nobody", "usd": "5"}),
        ("post", "/credits/topup", {"org": "Nowhere", "usd": "5"}),
        ("put", "/notifications", {"user": "nobody", "threshold_usd": "5"}),
        ("put", "/notifications", {"org": "999", "threshold_usd": "5"}),
        ("post", "/keys", {"user": "nobody"}),
        ("post", "/keys", {"user": "ada", "org": "Nowhere"}),
        ("post", "/keys/999/revoke", None),
    ],
)
async def test_unknown_org_user_or_key_gets_404(
    admin: Admin, method: str, path: str, body: Any
) -> None:
    await seed(admin)

    assert_error(await getattr(admin, method)(path, body), 404, "not_found_error")


async def test_duplicate_username_or_org_name_gets_409(admin: Admin) -> None:
    await seed(admin)

    user = await admin.post("/users", {"username": "ada", "email": "another@dosia.ai"})
    org = await admin.post("/orgs", {"name": "Dosia AI"})
    padded = await admin.post("/orgs", {"name": "  Dosia AI "})

    assert "ada" in assert_error(user, 409, "conflict_error")
    assert "Dosia AI" in assert_error(org, 409, "conflict_error")
    assert_error(padded, 409, "conflict_error")
    # The refused writes left nothing behind: the next user and org get the next ids.
    nxt = await admin.ok("post", "/users", {"username": "cy", "email": "cy@dosia.ai"}, 201)
    assert nxt["username"] == "cy"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/notifications", {"org": "\x00", "threshold_usd": 0}),  # found by the fuzz
        ("post", "/orgs", {"name": "Dosia\x00AI"}),
        ("post", "/credits/topup", {"user": "ada", "usd": "5", "reference": "inv\x00-1"}),
        ("post", "/orgs/Dosia%00AI/pause", None),
        ("get", "/wallets?org=Dosia%00AI", None),
    ],
)
async def test_a_nul_character_anywhere_is_400_on_both_databases(
    admin: Admin, method: str, path: str, body: Any
) -> None:
    """PostgreSQL's text cannot hold a NUL: it was a 500 there (and stored on SQLite)."""
    await seed(admin)

    response = await admin.client.request(method, ADMIN + path, json=body, headers=admin.headers)

    assert "NUL" in assert_error(response, 400, "invalid_request_error")
