"""GET /api/v1/me/usage's filters (key_id, model, user), who may use them, CSV, and the
days' order: the totals per day come from the rollups, the calls from the records, and the
two agree under every filter."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bytespike.context import Context
from bytespike.upstream.base import Usage
from tests.conftest import FakeClock
from tests.e2e.gateway_support import books_balance
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.usage_support import assert_rollups_match, metered, mock_call

Keys = dict[str, dict[str, Any]]


@pytest.fixture
async def org(ctx: Context, client: httpx.AsyncClient, clock: FakeClock) -> Keys:
    """Dosia AI: ada (owner), bob (member); cy on her own. Two days of calls."""
    await make_org(ctx, "Dosia AI")
    for name, role in (("ada", "owner"), ("bob", "member")):
        await make_user(ctx, name, tier="enterprise")
        await add_member(ctx, "Dosia AI", name, role=role)
    await make_user(ctx, "cy")
    await top_up(ctx, "20", org="Dosia AI")
    await top_up(ctx, "5", user="cy")
    keys = {
        "ada": await make_key(ctx, "ada", org="Dosia AI"),
        "bob": await make_key(ctx, "bob", org="Dosia AI"),
        "bob2": await make_key(ctx, "bob", org="Dosia AI", name="bob-ci"),
        "cy": await make_key(ctx, "cy"),
    }
    wallet = await wallet_of(ctx, org="Dosia AI")
    await mock_call(client, keys["ada"], "Hello")
    await mock_call(client, keys["bob"], "Hello from bob")
    await mock_call(client, keys["cy"], "Hello from cy")
    clock.advance(days=1)
    await mock_call(client, keys["bob2"], "Morning")
    await metered(ctx, keys["bob"], wallet, "gpt-5-4", Usage(1_000, 100))
    await metered(ctx, keys["ada"], wallet, "gpt-5-4", Usage(2_000, 10))
    await assert_rollups_match(ctx)
    await books_balance(ctx, wallet)
    return keys


async def usage(client: httpx.AsyncClient, key: dict[str, Any], **params: Any) -> httpx.Response:
    return await client.get(
        "/api/v1/me/usage", params=params, headers={"Authorization": f"Bearer {key['key']}"}
    )


def micros(usd: Any) -> int:
    return int(Decimal(str(usd)) * 1_000_000)


def agree(body: dict[str, Any]) -> None:
    """by_day (rollups) sums the calls listed (records), when they fit on one page."""
    assert body["has_more"] is False
    for field in ("input_tokens", "output_tokens", "cached_tokens"):
        assert sum(d[field] for d in body["by_day"]) == sum(r[field] for r in body["data"])
    assert sum(d["requests"] for d in body["by_day"]) == len(body["data"])
    days = sum(micros(d["cost_usd"]) for d in body["by_day"])
    assert days == sum(micros(r["cost_usd"]) for r in body["data"])


async def test_an_owner_narrows_to_a_key_a_model_or_a_user(
    client: httpx.AsyncClient, org: Keys
) -> None:
    ada, bob, bob2 = org["ada"], org["bob"], org["bob2"]
    everything = (await usage(client, ada)).json()
    assert len(everything["data"]) == 5 and everything["scope"] == "wallet"
    agree(everything)

    one_key = (await usage(client, ada, key_id=bob["id"])).json()
    assert {r["key_id"] for r in one_key["data"]} == {bob["id"]} and len(one_key["data"]) == 2
    agree(one_key)

    gpt = (await usage(client, ada, model="gpt-5-4")).json()
    assert [r["model"] for r in gpt["data"]] == ["gpt-5-4", "gpt-5-4"]
    assert {d["model"] for d in gpt["by_day"]} == {"gpt-5-4"}
    agree(gpt)

    bobs = (await usage(client, ada, user="bob")).json()
    assert {r["key_id"] for r in bobs["data"]} == {bob["id"], bob2["id"]}
    agree(bobs)
    by_id = (await usage(client, ada, user=str(bob["user_id"]))).json()
    assert by_id["data"] == bobs["data"]
    both = (await usage(client, ada, user="bob", key_id=bob2["id"], model="mock")).json()
    assert [(r["key_id"], r["model"]) for r in both["data"]] == [(bob2["id"], "mock")]
    agree(both)
    assert (await usage(client, ada, user="bob", key_id=ada["id"])).json()["data"] == []
    mine = (await usage(client, ada, user="ada")).json()
    assert {r["key_id"] for r in mine["data"]} == {ada["id"]}


@pytest.mark.parametrize("who", ["zed", "cy"])
async def test_a_user_outside_the_wallet_is_404_whether_or_not_they_exist(
    client: httpx.AsyncClient, org: Keys, who: str
) -> None:
    answer = await usage(client, org["ada"], user=who)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == f"no user {who!r} uses this wallet"
    # An individual manages only their own wallet: nobody else uses it.
    assert (await usage(client, org["cy"], user="ada")).status_code == 404
    assert (await usage(client, org["cy"], user="cy")).status_code == 200


async def test_a_member_sees_only_their_own_keys_and_asking_for_more_is_403(
    client: httpx.AsyncClient, org: Keys
) -> None:
    bob = org["bob"]
    own = (await usage(client, bob, user="bob")).json()
    assert own["scope"] == "own_keys" and len(own["data"]) == 3
    assert (await usage(client, bob, key_id=org["bob2"]["id"])).json()["data"][0]["model"] == (
        "mock"
    )
    for params in ({"user": "ada"}, {"user": "zed"}, {"key_id": org["ada"]["id"]}):
        answer = await usage(client, bob, **params)
        assert answer.status_code == 403, params
        assert answer.json()["error"]["type"] == "permission_error"


async def test_csv_lists_the_page_of_calls_with_a_header_and_the_next_cursor(
    client: httpx.AsyncClient, org: Keys
) -> None:
    ada = org["ada"]
    as_json = (await usage(client, ada)).json()["data"]
    first = await usage(client, ada, format="csv", limit=3)
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(first.text)))
    assert [r["id"] for r in rows] == [r["id"] for r in as_json[:3]]
    assert rows[0].keys() == {
        "id", "created_at", "key_id", "model", "provider", "status", "http_status", "stream",
        "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "latency_ms", "request_id",
    }  # fmt: skip
    for row, record in zip(rows, as_json, strict=False):
        assert micros(row["cost_usd"]) == micros(record["cost_usd"])
        assert row["stream"] == "false" and int(row["input_tokens"]) == record["input_tokens"]
    rest = await usage(client, ada, format="csv", cursor=first.headers["x-next-cursor"])
    assert [r["id"] for r in csv.DictReader(io.StringIO(rest.text))] == [
        r["id"] for r in as_json[3:]
    ]
    assert "x-next-cursor" not in rest.headers
    assert (await usage(client, ada, format="csv", limit=10_000)).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-03-12", "until": "2026-03-11"},
        {"format": "xml"},
        {"key_id": "abc"},
        {"format": "csv", "limit": 10_001},
        {"limit": 201},
    ],
)
async def test_bad_filters_are_400(
    client: httpx.AsyncClient, org: Keys, params: dict[str, Any]
) -> None:
    answer = await usage(client, org["ada"], **params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"
