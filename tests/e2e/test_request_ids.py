"""Every response names its request (`x-request-id`; `request-id` too on Anthropic's
routes), and that one id is the audit log's and every log line's of the request."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from bytespike.context import Context
from tests.conftest import ADMIN_TOKEN
from tests.factories import make_key, make_user


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/me/account", 401),
        ("GET", "/no/such/route", 404),
        ("POST", "/v1/chat/completions", 401),
        ("GET", "/v1/models", 401),
    ],
)
async def test_every_response_carries_a_request_id(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["x-request-id"].startswith("req_")
    assert "request-id" not in response.headers  # not an Anthropic route


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/messages", {}),
        ("/v1/messages/count_tokens", {}),
        ("/v1/models", {"anthropic-version": "2023-06-01"}),
    ],
)
async def test_anthropics_routes_name_it_request_id_as_well(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    method = "GET" if path == "/v1/models" else "POST"
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["request-id"] == response.headers["x-request-id"]
    assert response.json()["type"] == "error"  # and the refusal is Anthropic's envelope


async def test_two_requests_never_share_an_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_the_admin_apis_audit_entry_and_log_lines_carry_the_responses_id(
    ctx: Context, client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    await make_user(ctx)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = await client.post(
        "/api/v1/admin/credits/adjust",
        json={"user": "ada", "usd": "1", "reason": "welcome credit"},
        headers=admin,  # no id of the client's: the gateway's own is the audit's
    )
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    audit = (await client.get("/api/v1/admin/audit", headers=admin)).json()["data"]
    [entry] = [e for e in audit if e["action"] == "credits.adjust"]
    assert entry["request_id"] == request_id
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    [access] = [line for line in lines if line.get("path") == "/api/v1/admin/credits/adjust"]
    assert access["request_id"] == request_id


async def test_a_metered_calls_log_lines_carry_its_id(
    ctx: Context, client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    await make_user(ctx)
    key = (await make_key(ctx))["key"]
    body = {"model": "mock", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
    response = await client.post(
        "/v1/messages", json=body, headers={"x-api-key": key, "x-request-id": "trace-7"}
    )
    assert response.status_code == 402  # no money: refused, but named all the same
    assert response.headers["request-id"] == "trace-7"
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    mine = [line for line in lines if line.get("path") == "/v1/messages"]
    assert mine and all(line["request_id"] == "trace-7" for line in mine)
