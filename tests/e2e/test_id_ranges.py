"""Ids and cursors as clients send them: an id its column cannot hold (past INTEGER or
BIGINT, negative, not an integer at all) names no row, so it is 404 not_found_error; a
cursor that no page ever handed out is 400 invalid_request_error. Never a 500."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from bytespike.context import Context
from bytespike.db.metadata import MAX_BIG_ID, MAX_ID
from tests.factories import make_key, make_user
from tests.processes import BYTESPIKE, clean_env

HOOKS = "/api/v1/me/webhooks"

# Not an id of an INTEGER column (webhook endpoints, keys).
BAD_IDS = [
    str(MAX_ID + 1),
    str(MAX_BIG_ID + 1),
    "9" * 30,
    "9" * 5000,  # past Python's own limit on int() of text
    "%C2%B2",  # "²": str.isdigit() says yes, int() says no
    "%D9%A3",  # Arabic-Indic three
    "-1",
    "abc",
]
# Not an id of a BIGINT column (webhook deliveries).
BAD_BIG_IDS = [str(MAX_BIG_ID + 1), "9" * 30, "%C2%B2", "-5", "1.5"]


@pytest.fixture
async def key(ctx: Context) -> dict[str, Any]:
    await make_user(ctx)
    return await make_key(ctx)


def assert_not_found(answer: httpx.Response) -> None:
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["type"] == "not_found_error", answer.text


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/test"),
        ("POST", "/rotate-secret"),
        ("GET", "/deliveries"),
        ("POST", "/deliveries/1/retry"),
    ],
)
async def test_a_webhook_endpoint_id_out_of_range_is_404(
    client: httpx.AsyncClient, key: dict[str, Any], bad: str, method: str, tail: str
) -> None:
    body = {"enabled": False} if method == "PATCH" else None
    answer = await client.request(
        method, f"{HOOKS}/{bad}{tail}", headers={"x-api-key": key["key"]}, json=body
    )
    assert_not_found(answer)


@pytest.mark.parametrize("bad", BAD_BIG_IDS)
async def test_a_delivery_id_out_of_range_is_404(
    client: httpx.AsyncClient, key: dict[str, Any], bad: str
) -> None:
    answer = await client.post(
        f"{HOOKS}/1/deliveries/{bad}/retry", headers={"x-api-key": key["key"]}
    )
    assert_not_found(answer)


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_revoking_a_key_id_out_of_range_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str], bad: str
) -> None:
    assert_not_found(await client.post(f"/api/v1/admin/keys/{bad}/revoke", headers=admin_headers))


async def test_the_largest_ids_are_plain_misses(
    client: httpx.AsyncClient, key: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    headers = {"x-api-key": key["key"]}
    assert_not_found(await client.get(f"{HOOKS}/{MAX_ID}", headers=headers))
    assert_not_found(
        await client.post(f"/api/v1/admin/keys/{MAX_ID}/revoke", headers=admin_headers)
    )


@pytest.mark.parametrize(
    "cursor", ["²", "٣", str(MAX_BIG_ID + 1), "9" * 5000, "-1", "", " 1", "0x10", "1e3"]
)
async def test_a_malformed_cursor_is_400(
    client: httpx.AsyncClient, key: dict[str, Any], cursor: str
) -> None:
    answer = await client.get(
        "/api/v1/me/usage", params={"cursor": cursor}, headers={"x-api-key": key["key"]}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"


async def test_the_largest_cursor_is_a_page(client: httpx.AsyncClient, key: dict[str, Any]) -> None:
    answer = await client.get(
        "/api/v1/me/usage", params={"cursor": str(MAX_BIG_ID)}, headers={"x-api-key": key["key"]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == []


@pytest.mark.parametrize("bad", [str(MAX_ID + 1), str(MAX_BIG_ID + 1)])
def test_cli_revoking_a_key_id_out_of_range_says_no_such_key(
    db_url: str, tmp_path: Path, bad: str
) -> None:
    done = subprocess.run(
        [BYTESPIKE, "keys", "revoke", bad],
        env=clean_env(BYTESPIKE_DATABASE_URL=db_url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"no key {bad}" in done.stderr and "Traceback" not in done.stderr


async def test_a_usage_range_ending_on_the_last_day_of_the_calendar_is_served(
    client: httpx.AsyncClient, key: dict[str, Any]
) -> None:
    answer = await client.get(
        "/api/v1/me/usage?since=2000-01-01&until=9999-12-31", headers={"x-api-key": key["key"]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["until"] == "9999-12-31"
