"""GET /api/v1/me/account, field for field and error for error as the reference shows it.

Every test runs on SQLite and PostgreSQL (the `db_url` fixture behind `ctx` and `client`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike.billing import holds
from bytespike.billing.service import set_threshold
from bytespike.billing.tables import holds as holds_table
from bytespike.billing.tables import ledger_entries, wallets
from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.money import parse_usd
from bytespike.orgs import service as orgs
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.usage import repo as usage_repo
from tests.conftest import FakeClock
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of

ACCOUNT = "/api/v1/me/account"
# A moment 40 s into its minute, so the limiter's window has 20 s left, every time.
FROZEN_NOW = 1_800_000_040.0


@pytest.fixture
def limiter() -> MemoryRateLimiter:
    """Frozen in time: a test never straddles the limiter's minute boundary."""
    return MemoryRateLimiter(now=lambda: FROZEN_NOW)


def bearer(key: dict[str, Any] | str) -> dict[str, str]:
    secret = key if isinstance(key, str) else key["key"]
    return {"Authorization": f"Bearer {secret}"}


async def spend(
    ctx: Context, wallet_id: int, key_id: int | None, model: str | None, usd: str
) -> None:
    """Hold then settle exactly `usd`, as a metered request does, at the clock's time: with
    a key and model, its usage record (and so its daily rollup) in the same transaction."""
    cost = parse_usd(usd)
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        placed = await holds.place(
            conn, wallet_id, cost, now=now, ttl=ctx.hold_ttl, key_id=key_id, model=model
        )
        settled = await holds.settle(conn, placed.hold_id, cost, now=now)
        if key_id is not None and model is not None:
            record = usage_repo.row(
                wallet_id=wallet_id,
                key_id=key_id,
                hold_id=placed.hold_id,
                hold_entry_id=placed.entry_id,
                settle_entry_id=settled.entry_id,
                model=model,
                provider="test",
                usage=None,
                cost=cost,
                status="ok",
                http_status=200,
                stream=False,
                latency_ms=1,
                now=now,
            )
            await usage_repo.insert(conn, record)


async def hold(ctx: Context, wallet_id: int, usd: str) -> int:
    async with ctx.db.write() as conn:
        placed = await holds.place(
            conn, wallet_id, parse_usd(usd), now=ctx.clock.now(), ttl=ctx.hold_ttl
        )
        return placed.hold_id


def assert_error(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["type"] == type_
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) <= {"type", "message", "code"}
    return dict(body["error"])


# --- the payload ------------------------------------------------------------------------------


async def test_reference_payload_reproduced_from_the_ledger(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """The reference's example response, built from real top-ups and settlements."""
    clock.moment = datetime(2026, 1, 4, 7, 11, 0, 123456, tzinfo=UTC)
    user = await make_user(ctx, "ada")
    clock.advance(days=1)
    org = await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", "admin")
    await top_up(ctx, "250", user="ada")
    key = await make_key(
        ctx,
        models=[
            ("claude-sonnet-4-6", None),
            ("gpt-5-4", parse_usd("50")),
            ("gemini-3-1-pro", None),
        ],
    )
    other = await make_key(ctx)
    wallet = await wallet_of(ctx, user="ada")
    await spend(ctx, wallet, key["id"], "claude-sonnet-4-6", "64.04")
    await spend(ctx, wallet, key["id"], "gpt-5-4", "18.22")
    await spend(ctx, wallet, key["id"], "gemini-3-1-pro", "0.41")
    await spend(ctx, wallet, other["id"], "claude-sonnet-4-6", "135.93")  # another key's spend

    response = await client.get(ACCOUNT, headers=bearer(key))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "user": {
            "id": user["id"],
            "username": "ada",
            "email": "ada@dosia.ai",
            "created_at": "2026-01-04T07:11:00Z",
            "tier": "individual",
        },
        "balance": {
            "available_usd": 31.40,
            "lifetime_topup_usd": 250.00,
            "lifetime_spent_usd": 218.60,
            "low_balance_threshold_usd": 5.00,
            "low_balance_flagged": False,
        },
        "allowed_models": [
            {"id": "claude-sonnet-4-6", "quota_used_usd": 64.04, "quota_cap_usd": None},
            {"id": "gpt-5-4", "quota_used_usd": 18.22, "quota_cap_usd": 50.00},
            {"id": "gemini-3-1-pro", "quota_used_usd": 0.41, "quota_cap_usd": None},
        ],
        "org": {"id": org["id"], "name": "Dosia AI", "role": "admin"},
    }
    # Exact decimal text on the wire: no float artefacts such as 31.400000000000002.
    assert '"available_usd":31.4,' in response.text
    assert '"lifetime_spent_usd":218.6,' in response.text


async def test_created_at_is_utc_with_z_and_whole_seconds(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.moment = datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    await make_user(ctx)
    key = await make_key(ctx)

    created_at = (await client.get(ACCOUNT, headers=bearer(key))).json()["user"]["created_at"]

    assert created_at == "2026-06-30T23:59:59Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created_at)


async def test_available_is_after_pending_holds_and_spend_follows_settlement(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    await top_up(ctx, "100", user="ada")
    key = await make_key(ctx)
    wallet = await wallet_of(ctx, user="ada")

    hold_id = await hold(ctx, wallet, "30")
    pending = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]
    async with ctx.db.write() as conn:
        await holds.settle(conn, hold_id, parse_usd("12.5"), now=ctx.clock.now())
    settled = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]

    assert (pending["available_usd"], pending["lifetime_topup_usd"]) == (70.0, 100.0)
    assert pending["lifetime_spent_usd"] == 0.0
    assert (settled["available_usd"], settled["lifetime_spent_usd"]) == (87.5, 12.5)
    assert settled["lifetime_topup_usd"] == 100.0


async def test_lifetime_topup_sums_every_top_up(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx)
    for amount in ("19.99", "0.01", "80"):
        await top_up(ctx, amount, user="ada")
    key = await make_key(ctx)

    balance = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]

    assert (balance["lifetime_topup_usd"], balance["available_usd"]) == (100.0, 100.0)


async def test_low_balance_flag_boundary_is_inclusive_to_the_micro_dollar(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    await top_up(ctx, "5.000001", user="ada")  # default threshold: 5.00
    key = await make_key(ctx)
    wallet = await wallet_of(ctx, user="ada")

    above = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]
    await hold(ctx, wallet, "0.000001")
    at = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]

    assert above["available_usd"] == 5.000001
    assert above["low_balance_flagged"] is False
    assert (at["available_usd"], at["low_balance_threshold_usd"]) == (5.0, 5.0)
    assert at["low_balance_flagged"] is True


async def test_threshold_set_by_the_owner_is_shown_and_used(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    await top_up(ctx, "20", user="ada")
    key = await make_key(ctx)

    await set_threshold(ctx, threshold=parse_usd("20"), username="ada")
    at = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]
    await set_threshold(ctx, threshold=parse_usd("19.999999"), username="ada")
    below = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]

    assert (at["low_balance_threshold_usd"], at["low_balance_flagged"]) == (20.0, True)
    assert (below["low_balance_threshold_usd"], below["low_balance_flagged"]) == (19.999999, False)


async def test_empty_wallet_is_flagged(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx)
    key = await make_key(ctx)

    balance = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]

    assert balance == {
        "available_usd": 0.0,
        "lifetime_topup_usd": 0.0,
        "lifetime_spent_usd": 0.0,
        "low_balance_threshold_usd": 5.0,
        "low_balance_flagged": True,
    }


# --- allowed models and quotas ---------------------------------------------------------------


async def test_default_roster_is_the_whole_catalog_in_catalog_order_uncapped(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    key = await make_key(ctx)

    models = (await client.get(ACCOUNT, headers=bearer(key))).json()["allowed_models"]

    assert models == [
        {"id": model_id, "quota_used_usd": 0.0, "quota_cap_usd": None}
        for model_id in ctx.catalog.ids
    ]
    assert [m["id"] for m in models] == [
        "claude-sonnet-4-6",
        "gpt-5-4",
        "gemini-3-1-pro",
        "mock",
        "text-embedding-3-small",
        "gemini-embedding-001",
    ]


async def test_restricted_roster_shows_only_its_models_in_catalog_order_with_caps(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    key = await make_key(
        ctx, models=[("gemini-3-1-pro", parse_usd("0.5")), ("claude-sonnet-4-6", None)]
    )

    models = (await client.get(ACCOUNT, headers=bearer(key))).json()["allowed_models"]

    assert models == [
        {"id": "claude-sonnet-4-6", "quota_used_usd": 0.0, "quota_cap_usd": None},
        {"id": "gemini-3-1-pro", "quota_used_usd": 0.0, "quota_cap_usd": 0.5},
    ]


async def test_zero_cap_is_a_number_not_null(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx)
    key = await make_key(ctx, models=[("gpt-5-4", 0)])

    models = (await client.get(ACCOUNT, headers=bearer(key))).json()["allowed_models"]

    assert models == [{"id": "gpt-5-4", "quota_used_usd": 0.0, "quota_cap_usd": 0.0}]


async def test_quota_used_counts_this_key_and_model_only(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    await top_up(ctx, "100", user="ada")
    key = await make_key(ctx)
    sibling = await make_key(ctx)
    wallet = await wallet_of(ctx, user="ada")
    await spend(ctx, wallet, key["id"], "gpt-5-4", "1.25")
    await spend(ctx, wallet, key["id"], "gpt-5-4", "0.75")
    await spend(ctx, wallet, sibling["id"], "gpt-5-4", "9")
    await spend(ctx, wallet, sibling["id"], "gemini-3-1-pro", "9")
    released = await hold(ctx, wallet, "5")  # a hold that ends released spends nothing
    async with ctx.db.write() as conn:
        await holds.release(conn, released, now=ctx.clock.now())
    await hold(ctx, wallet, "3")  # a pending hold is not spend either

    used = {
        m["id"]: m["quota_used_usd"]
        for m in (await client.get(ACCOUNT, headers=bearer(key))).json()["allowed_models"]
    }

    assert used == {
        "claude-sonnet-4-6": 0.0,
        "gpt-5-4": 2.0,
        "gemini-3-1-pro": 0.0,
        "mock": 0.0,
        "text-embedding-3-small": 0.0,
        "gemini-embedding-001": 0.0,
    }


@pytest.mark.parametrize(
    ("reset", "period_start"),
    [
        # The clock reads Tuesday 2026-03-10 12:00 UTC.
        ("daily", datetime(2026, 3, 10, tzinfo=UTC)),
        ("weekly", datetime(2026, 3, 9, tzinfo=UTC)),  # ISO week: Monday
        ("monthly", datetime(2026, 3, 1, tzinfo=UTC)),
        (None, None),
    ],
)
async def test_quota_used_counts_spend_since_the_period_start(
    ctx: Context,
    client: httpx.AsyncClient,
    clock: FakeClock,
    reset: str | None,
    period_start: datetime | None,
) -> None:
    now = clock.now()
    clock.moment = datetime(2026, 1, 1, tzinfo=UTC)
    await make_user(ctx)
    await top_up(ctx, "100", user="ada")
    key = await make_key(ctx, quota_reset=reset)
    wallet = await wallet_of(ctx, user="ada")
    boundary = period_start or datetime(2026, 3, 1, tzinfo=UTC)
    for moment, usd in [
        (datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), "1"),
        (boundary - timedelta(microseconds=1), "2"),
        (boundary, "4"),
        (now, "8"),
    ]:
        clock.moment = moment
        await spend(ctx, wallet, key["id"], "claude-sonnet-4-6", usd)
    clock.moment = now

    models = (await client.get(ACCOUNT, headers=bearer(key))).json()["allowed_models"]

    expected = 15.0 if reset is None else 12.0
    assert models[0] == {
        "id": "claude-sonnet-4-6",
        "quota_used_usd": expected,
        "quota_cap_usd": None,
    }


async def test_daily_quota_starts_again_at_utc_midnight(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_user(ctx)
    await top_up(ctx, "100", user="ada")
    key = await make_key(ctx, quota_reset="daily", models=[("gpt-5-4", parse_usd("10"))])
    await spend(ctx, await wallet_of(ctx, user="ada"), key["id"], "gpt-5-4", "3")

    clock.moment = datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC)
    before_midnight = (await client.get(ACCOUNT, headers=bearer(key))).json()
    clock.moment = datetime(2026, 3, 11, 0, 0, 0, tzinfo=UTC)
    after_midnight = (await client.get(ACCOUNT, headers=bearer(key))).json()

    assert before_midnight["allowed_models"][0]["quota_used_usd"] == 3.0
    assert after_midnight["allowed_models"] == [
        {"id": "gpt-5-4", "quota_used_usd": 0.0, "quota_cap_usd": 10.0}
    ]
    assert after_midnight["balance"]["lifetime_spent_usd"] == 3.0  # the wallet does not reset


# --- org -----------------------------------------------------------------------------------------


async def test_no_membership_means_org_null(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx)
    await make_org(ctx, "Elsewhere")  # an org the user is not in changes nothing
    key = await make_key(ctx)

    assert (await client.get(ACCOUNT, headers=bearer(key))).json()["org"] is None


async def test_key_created_in_an_org_shows_that_org_and_the_callers_role(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_user(ctx)
    first = await make_org(ctx, "First")
    second = await make_org(ctx, "Second")
    await add_member(ctx, "First", "ada", "owner")
    clock.advance(hours=1)
    await add_member(ctx, "Second", "ada", "member")
    in_second = await make_key(ctx, org="Second")
    in_first_by_id = await make_key(ctx, org=str(first["id"]))

    org_second = (await client.get(ACCOUNT, headers=bearer(in_second))).json()["org"]
    org_first = (await client.get(ACCOUNT, headers=bearer(in_first_by_id))).json()["org"]

    assert org_second == {"id": second["id"], "name": "Second", "role": "member"}
    assert org_first == {"id": first["id"], "name": "First", "role": "owner"}


async def test_key_outside_any_org_shows_the_oldest_membership(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_user(ctx)
    newer_org = await make_org(ctx, "Created first, joined last")
    older_org = await make_org(ctx, "Created last, joined first")
    await add_member(ctx, "Created last, joined first", "ada", "admin")
    clock.advance(days=3)
    await add_member(ctx, "Created first, joined last", "ada", "owner")
    key = await make_key(ctx)

    org = (await client.get(ACCOUNT, headers=bearer(key))).json()["org"]

    assert org == {"id": older_org["id"], "name": "Created last, joined first", "role": "admin"}
    assert newer_org["id"] < older_org["id"]


async def test_role_change_shows_on_the_next_call(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "member")
    key = await make_key(ctx, org="Dosia AI")

    before = (await client.get(ACCOUNT, headers=bearer(key))).json()["org"]["role"]
    await add_member(ctx, "Dosia AI", "ada", "owner")
    after = (await client.get(ACCOUNT, headers=bearer(key))).json()["org"]["role"]

    assert (before, after) == ("member", "owner")


async def test_individual_in_an_org_keeps_a_personal_wallet(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "member")
    await top_up(ctx, "10", user="ada")
    await top_up(ctx, "999", org="Dosia AI")
    key = await make_key(ctx, org="Dosia AI")

    balance = (await client.get(ACCOUNT, headers=bearer(key))).json()["balance"]

    assert (balance["available_usd"], balance["lifetime_topup_usd"]) == (10.0, 10.0)


async def test_enterprise_user_sees_the_org_wallet(ctx: Context, client: httpx.AsyncClient) -> None:
    user = await make_user(ctx, "bob", tier="enterprise")
    org = await make_org(ctx)
    await add_member(ctx, "Dosia AI", "bob", "member")
    await top_up(ctx, "1000", org="Dosia AI")
    await set_threshold(ctx, threshold=parse_usd("100"), org="Dosia AI")
    org_wallet = await wallet_of(ctx, org="Dosia AI")
    key = await make_key(ctx, "bob")
    await spend(ctx, org_wallet, key["id"], "gpt-5-4", "925")

    body = (await client.get(ACCOUNT, headers=bearer(key))).json()

    assert body["user"]["tier"] == "enterprise"
    assert body["user"]["id"] == user["id"]
    assert body["balance"] == {
        "available_usd": 75.0,
        "lifetime_topup_usd": 1000.0,
        "lifetime_spent_usd": 925.0,
        "low_balance_threshold_usd": 100.0,
        "low_balance_flagged": True,
    }
    assert body["org"] == {"id": org["id"], "name": "Dosia AI", "role": "member"}
    assert body["allowed_models"][1] == {
        "id": "gpt-5-4",
        "quota_used_usd": 925.0,
        "quota_cap_usd": None,
    }


# --- authentication ------------------------------------------------------------------------------


async def test_bearer_and_x_api_key_give_the_same_account(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    await top_up(ctx, "12.34", user="ada")
    key = await make_key(ctx)

    by_bearer = await client.get(ACCOUNT, headers=bearer(key))
    by_header = await client.get(ACCOUNT, headers={"x-api-key": key["key"]})
    lowercase_scheme = await client.get(ACCOUNT, headers={"authorization": f"bearer {key['key']}"})

    assert by_bearer.status_code == by_header.status_code == lowercase_scheme.status_code == 200
    assert by_bearer.json() == by_header.json() == lowercase_scheme.json()
    assert by_header.json()["balance"]["available_usd"] == 12.34


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer not-a-key"}, id="malformed"),
        pytest.param({"Authorization": "Bearer bsk-short"}, id="malformed-bsk"),
        pytest.param({"Authorization": "Bearer bsk-" + "A" * 43}, id="unknown-well-formed"),
        pytest.param({"x-api-key": "bsk-" + "A" * 43}, id="unknown-x-api-key"),
        pytest.param({"Authorization": "Basic YWRhOnNlY3JldA=="}, id="basic-scheme"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-without-key"),
        pytest.param({"Authorization": "Bearer    "}, id="bearer-blank"),
        pytest.param({"Authorization": ""}, id="empty-authorization"),
        pytest.param({"x-api-key": ""}, id="empty-x-api-key"),
        pytest.param({"Authorization": "Bearer " + "a" * 10_240}, id="huge-bearer"),
        pytest.param({"x-api-key": "bsk-" + "b" * 10_240}, id="huge-x-api-key"),
        pytest.param({"Authorization": b"Bearer bsk-\xe9\xff\xfe\x80"}, id="non-ascii-bearer"),
        pytest.param({"x-api-key": b"bsk-" + b"\xc3\xa9" * 43}, id="non-ascii-x-api-key"),
        pytest.param({"Authorization": b"\xff\xfe " + b"x" * 43}, id="non-ascii-scheme"),
    ],
)
async def test_bad_credentials_get_401_in_the_envelope(
    ctx: Context, client: httpx.AsyncClient, headers: dict[str, Any]
) -> None:
    await make_user(ctx)
    await make_key(ctx)  # a real key exists; none of these is it

    response = await client.get(ACCOUNT, headers=headers)

    assert_error(response, 401, "authentication_error")
    assert "x-ratelimit-limit-requests" not in response.headers  # no key, nothing counted


async def test_wrong_scheme_with_a_good_key_is_refused(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    key = await make_key(ctx)

    response = await client.get(ACCOUNT, headers={"Authorization": f"Basic {key['key']}"})

    error = assert_error(response, 401, "authentication_error")
    assert "Bearer" in error["message"]


async def test_revoked_key_gets_401_from_the_next_request(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    key = await make_key(ctx)
    kept = await make_key(ctx)
    assert (await client.get(ACCOUNT, headers=bearer(key))).status_code == 200

    await keys.revoke(ctx, key["id"])

    error = assert_error(
        await client.get(ACCOUNT, headers=bearer(key)), 401, "authentication_error"
    )
    assert "revoked" in error["message"]
    via_header = await client.get(ACCOUNT, headers={"x-api-key": key["key"]})
    assert_error(via_header, 401, "authentication_error")
    assert (await client.get(ACCOUNT, headers=bearer(kept))).status_code == 200


async def test_error_messages_never_echo_the_key(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx)
    key = await make_key(ctx)
    await keys.revoke(ctx, key["id"])
    unknown = "bsk-" + "Z" * 43

    for secret in (key["key"], unknown):
        response = await client.get(ACCOUNT, headers=bearer(secret))
        assert response.status_code == 401
        assert secret not in response.text
        assert secret[4:] not in response.text


# --- paused orgs ---------------------------------------------------------------------------------


async def test_key_of_a_paused_org_gets_403_until_the_org_resumes(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "owner")
    in_org = await make_key(ctx, org="Dosia AI")
    personal = await make_key(ctx)

    await orgs.set_paused(ctx, org="Dosia AI", paused=True)
    paused = await client.get(ACCOUNT, headers=bearer(in_org))
    paused_header = await client.get(ACCOUNT, headers={"x-api-key": in_org["key"]})
    personal_while_paused = await client.get(ACCOUNT, headers=bearer(personal))
    await orgs.set_paused(ctx, org="Dosia AI", paused=False)
    resumed = await client.get(ACCOUNT, headers=bearer(in_org))

    error = assert_error(paused, 403, "permission_error")
    assert "paused" in error["message"]
    assert_error(paused_header, 403, "permission_error")
    assert paused.headers["x-ratelimit-limit-requests"] == "600"
    # The key was not created in the org, so the reference's 403 does not apply to it.
    assert personal_while_paused.status_code == 200
    assert resumed.status_code == 200
    assert resumed.json()["org"]["name"] == "Dosia AI"


# --- rate limits ---------------------------------------------------------------------------------


async def test_rate_limit_headers_on_every_response_and_429_once_spent(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    key = await make_key(ctx, rate_limit=3)
    other = await make_key(ctx, rate_limit=3)

    responses = [await client.get(ACCOUNT, headers=bearer(key)) for _ in range(3)]
    limited = await client.get(ACCOUNT, headers={"x-api-key": key["key"]})
    limited_again = await client.get(ACCOUNT, headers=bearer(key))
    unaffected = await client.get(ACCOUNT, headers=bearer(other))

    assert [r.status_code for r in responses] == [200, 200, 200]
    for remaining, response in zip((2, 1, 0), responses, strict=True):
        assert response.headers["RateLimit-Policy"] == '"requests";q=3;w=60'
        assert response.headers["RateLimit"] == f'"requests";r={remaining};t=20'
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        assert response.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert response.headers["x-ratelimit-reset-requests"] == "20s"
        assert "Retry-After" not in response.headers
    for response in (limited, limited_again):
        error = assert_error(response, 429, "rate_limit_error")
        assert "3 requests per minute" in error["message"]
        assert response.headers["Retry-After"] == "20"
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        assert response.headers["RateLimit"] == '"requests";r=0;t=20'
    assert unaffected.status_code == 200
    assert unaffected.headers["x-ratelimit-remaining-requests"] == "2"


async def test_default_rate_limit_is_600_per_minute(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await make_user(ctx)
    key = await make_key(ctx)

    response = await client.get(ACCOUNT, headers=bearer(key))

    assert response.headers["x-ratelimit-limit-requests"] == "600"
    assert response.headers["x-ratelimit-remaining-requests"] == "599"


async def test_limit_resets_in_the_next_minute(ctx: Context) -> None:
    from bytespike.app import create_app

    now = [FROZEN_NOW]
    app = create_app(
        ctx.settings, ctx=ctx, limiter=MemoryRateLimiter(now=lambda: now[0]), background=False
    )
    await make_user(ctx)
    key = await make_key(ctx, rate_limit=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get(ACCOUNT, headers=bearer(key))
        second = await client.get(ACCOUNT, headers=bearer(key))
        now[0] += 20  # the window ends
        third = await client.get(ACCOUNT, headers=bearer(key))

    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]
    assert third.headers["x-ratelimit-reset-requests"] == "60s"


# --- free -----------------------------------------------------------------------------------------


async def _money_state(ctx: Context) -> tuple[Any, ...]:
    async with ctx.db.read() as conn:
        entries = (await conn.execute(sa.select(sa.func.count()).select_from(ledger_entries))).one()
        held = (await conn.execute(sa.select(sa.func.count()).select_from(holds_table))).one()
        balances = (
            await conn.execute(
                sa.select(
                    wallets.c.id,
                    wallets.c.available_micros,
                    wallets.c.held_micros,
                    wallets.c.spent_micros,
                    wallets.c.topped_up_micros,
                ).order_by(wallets.c.id)
            )
        ).all()
    return (tuple(entries), tuple(held), [tuple(row) for row in balances])


async def test_the_endpoint_is_free(ctx: Context, client: httpx.AsyncClient) -> None:
    await make_user(ctx)
    await make_user(ctx, "bob", tier="enterprise")
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "bob", "member")
    await top_up(ctx, "1.00", user="ada")
    await top_up(ctx, "50", org="Dosia AI")
    key = await make_key(ctx, rate_limit=1000)
    org_key = await make_key(ctx, "bob", rate_limit=1000)
    await spend(ctx, await wallet_of(ctx, user="ada"), key["id"], "gpt-5-4", "0.25")
    await hold(ctx, await wallet_of(ctx, org="Dosia AI"), "2")
    before = await _money_state(ctx)
    first = (await client.get(ACCOUNT, headers=bearer(key))).json()

    for _ in range(60):
        assert (await client.get(ACCOUNT, headers=bearer(key))).status_code == 200
        assert (await client.get(ACCOUNT, headers={"x-api-key": org_key["key"]})).status_code == 200

    assert await _money_state(ctx) == before
    assert before[0] == (5,)  # two top-ups, hold + settle, one pending hold
    assert (await client.get(ACCOUNT, headers=bearer(key))).json() == first
    assert first["balance"]["available_usd"] == 0.75


# --- the rest of the HTTP surface ----------------------------------------------------------------


async def test_openapi_document_describes_the_account_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "bytespike"
    assert "get" in document["paths"][ACCOUNT]
    assert "/api/v1/admin/keys" in document["paths"]


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_unknown_route_and_wrong_method_use_the_envelope(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/me/nothing"), 404, "not_found_error")
    assert_error(await client.post(ACCOUNT), 405, "invalid_request_error")
