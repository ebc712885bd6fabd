"""No bad input costs money or availability: a malformed field anywhere in a body is a 400
naming it, in the route's own envelope, before any hold; the hold bounds every byte the
upstream may bill; a bug after the hold releases it on the spot; a paused org's resume is
seen as fast as its pause."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike.billing import pricing
from bytespike.billing.tables import holds, ledger_entries
from bytespike.catalog import Deployment, Model
from bytespike.context import Context
from bytespike.orgs import service as orgs
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.upstream.base import JSONObject, Prepared
from bytespike.upstream.mock import MockProvider
from bytespike.upstream.registry import Providers
from tests.e2e.gateway_support import Upstreams, books_balance, gateway
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.openai_schema import assert_valid

HI = [{"role": "user", "content": "Hi"}]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


# (route, body, param): each malformed where it used to crash a translation or a provider
# after the hold was placed.
CASES = [
    ("/v1/chat/completions", {"model": "mock", "messages": [1]}, "messages[0]"),
    (
        "/v1/chat/completions",
        {"model": "claude-sonnet-4-6", "messages": HI, "temperature": "x"},
        "temperature",
    ),
    ("/v1/chat/completions", {"model": "gemini-3-1-pro", "messages": HI, "tools": "x"}, "tools"),
    ("/v1/chat/completions", {"model": "mock", "messages": HI, "stream_options": "x"}, None),
    (
        "/v1/chat/completions",
        {"model": "gpt-5-4", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        "messages[0].content[0].image_url",
    ),
    (
        "/v1/chat/completions",
        {
            "model": "gemini-3-1-pro",
            "messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}],
        },
        None,  # valid alone, but it answers no tool call: Gemini cannot express it
    ),
    (
        "/v1/chat/completions",
        {"model": "mock", "messages": [{"role": "user", "content": nested(300)}]},
        None,
    ),
    (
        "/v1/messages",
        {
            "model": "gpt-5-4",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "tool_result"}]}],
        },
        "messages.0.content.0.tool_use_id",
    ),
    (
        "/v1/messages",
        {
            "model": "gemini-3-1-pro",
            "messages": [
                {"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}
            ],
        },
        "messages.0.content.0.source.media_type",
    ),
    (
        "/v1/messages",
        {"model": "claude-sonnet-4-6", "messages": HI, "temperature": 5},
        "temperature",
    ),
    (
        "/v1/messages",
        {"model": "mock", "messages": HI, "system": [{"type": "text"}]},
        "system.0.text",
    ),
    ("/v1/messages", {"model": "mock", "messages": HI, "max_tokens": "10"}, "max_tokens"),
    ("/v1/responses", {"model": "mock", "input": [1]}, "input[0]"),
    ("/v1/responses", {"model": "claude-sonnet-4-6", "input": "Hi", "top_p": "x"}, "top_p"),
    ("/v1/responses", {"model": "gpt-5-4", "input": "Hi", "max_output_tokens": 5}, None),
    ("/v1/responses", {"model": "gpt-5-4", "input": "Hi", "background": True}, "background"),
    (
        "/v1/responses",
        {"model": "mock", "input": [{"type": "item_reference", "id": "msg_1"}]},
        "input[0].type",
    ),
    (
        "/v1/responses",
        {"model": "gemini-3-1-pro", "input": "Hi", "tools": [{"type": "custom", "name": "x"}]},
        "tools[0].type",  # valid, but only an OpenAI model runs custom tools
    ),
    (
        "/v1/responses",
        {
            "model": "claude-sonnet-4-6",
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "input_image", "image_url": "https://x.example"}],
                }
            ],
        },
        "input[0].output",
    ),
]


@pytest.fixture
async def base_url(ctx: Context, fakes: Upstreams) -> AsyncIterator[str]:
    async with gateway(ctx, fakes, MemoryRateLimiter(now=lambda: 1_000_000.0)) as url:
        yield url


async def pending_holds(ctx: Context) -> int:
    async with ctx.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(holds).where(holds.c.status == "pending")
        return int((await conn.execute(query)).scalar_one())


def assert_envelope(route: str, answer: httpx.Response, status: int) -> dict[str, Any]:
    body = answer.json()
    assert answer.status_code == status, body
    if route == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    else:
        assert_valid("ErrorResponse", body)
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("route", "body", "param"), CASES)
async def test_a_malformed_field_is_a_400_naming_it_before_any_hold(
    ctx: Context,
    base_url: str,
    account: tuple[str, int],
    route: str,
    body: JSONObject,
    param: str | None,
) -> None:
    key, wallet_id = account
    before = await books_balance(ctx, wallet_id)
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": key}) as http:
        answer = await http.post(route, json=body)
    error = assert_envelope(route, answer, 400)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert param in error["message"], error
        if route != "/v1/messages":
            assert error["param"] == param, error
    assert await books_balance(ctx, wallet_id) == before  # nothing held, nothing spent
    assert await pending_holds(ctx) == 0


async def test_an_org_member_sending_bad_requests_never_locks_the_org_wallet(
    ctx: Context, base_url: str
) -> None:
    await make_org(ctx, "Dosia AI")
    for name, role in (("olga", "owner"), ("max", "member")):
        await make_user(ctx, name, tier="enterprise")
        await add_member(ctx, "Dosia AI", name, role)
    await top_up(ctx, "1", org="Dosia AI")
    member = (await make_key(ctx, "max", org="Dosia AI"))["key"]
    owner = (await make_key(ctx, "olga", org="Dosia AI"))["key"]
    async with httpx.AsyncClient(base_url=base_url) as http:
        for route, body, _param in CASES * 5:
            answer = await http.post(route, json=body, headers={"x-api-key": member})
            assert answer.status_code == 400, answer.text
        ok = await http.post(
            "/v1/chat/completions",
            json={"model": "mock", "messages": HI},
            headers={"x-api-key": owner},
        )
    assert ok.status_code == 200, ok.text
    assert await pending_holds(ctx) == 0
    await books_balance(ctx, await wallet_of(ctx, org="Dosia AI"))


async def test_the_hold_covers_every_field_the_upstream_may_bill(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    """200 KB of deprecated `functions` once made a 41-token bound: every field counts now."""
    key, wallet_id = account
    schema = {"type": "object", "description": "x" * 200_000}
    body = {
        "model": "mock",
        "max_tokens": 1,
        "messages": HI,
        "functions": [{"name": "f", "parameters": schema}],
    }
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": key}) as http:
        answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    async with ctx.db.read() as conn:
        query = sa.select(ledger_entries.c.d_held).where(
            ledger_entries.c.wallet_id == wallet_id, ledger_entries.c.kind == "hold"
        )
        held = (await conn.execute(query)).scalar_one()
    mock = ctx.catalog.get("mock")
    assert mock is not None
    assert held >= pricing.cost(mock, 200_000, 1)
    await books_balance(ctx, wallet_id)


class _Broken(MockProvider):
    """A provider with a bug: it fails after the hold in a way nobody foresaw."""

    async def send(self, request: Prepared) -> JSONObject:
        raise RuntimeError("a bug")


class _BrokenProviders(Providers):
    def for_deployment(self, model: Model, deployment: Deployment) -> Any:
        if model.id == "mock":
            return _Broken()
        return super().for_deployment(model, deployment)


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/messages"])
async def test_a_bug_after_the_hold_releases_it_and_answers_in_the_routes_envelope(
    ctx: Context, fakes: Upstreams, account: tuple[str, int], route: str
) -> None:
    key, wallet_id = account
    before = await books_balance(ctx, wallet_id)
    providers = _BrokenProviders(ctx.catalog, ctx.settings, env=fakes.env())
    async with (
        gateway(ctx, fakes, providers=providers) as url,
        httpx.AsyncClient(base_url=url, headers={"x-api-key": key}) as http,
    ):
        answer = await http.post(route, json={"model": "mock", "max_tokens": 10, "messages": HI})
    error = assert_envelope(route, answer, 500)
    assert error["type"] == "api_error" and "a bug" not in error["message"]
    assert await pending_holds(ctx) == 0
    assert await books_balance(ctx, wallet_id) == before


async def test_a_resumed_org_is_served_at_once_though_its_key_is_cached(
    ctx: Context, base_url: str
) -> None:
    await make_org(ctx, "Dosia AI")
    await make_user(ctx, "olga", tier="enterprise")
    await add_member(ctx, "Dosia AI", "olga", "owner")
    await top_up(ctx, "1", org="Dosia AI")
    key = (await make_key(ctx, "olga", org="Dosia AI"))["key"]
    call = {"model": "mock", "messages": HI}
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": key}) as http:
        assert (await http.post("/v1/chat/completions", json=call)).status_code == 200
        await orgs.set_paused(ctx, org="Dosia AI", paused=True)
        assert (await http.post("/v1/chat/completions", json=call)).status_code == 403
        assert (await http.post("/v1/chat/completions", json=call)).status_code == 403
        await orgs.set_paused(ctx, org="Dosia AI", paused=False)
        assert (await http.post("/v1/chat/completions", json=call)).status_code == 200
        # A key first seen while its org was paused is cached as paused: still served at once.
        await orgs.set_paused(ctx, org="Dosia AI", paused=True)
        fresh = {"x-api-key": (await make_key(ctx, "olga", org="Dosia AI"))["key"]}
        assert (
            await http.post("/v1/chat/completions", json=call, headers=fresh)
        ).status_code == 403
        await orgs.set_paused(ctx, org="Dosia AI", paused=False)
        assert (
            await http.post("/v1/chat/completions", json=call, headers=fresh)
        ).status_code == 200


async def test_the_openapi_document_describes_the_model_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, schema in (("/v1/chat/completions", "Chat"), ("/v1/messages", "Messages")):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{schema}Request"}
        assert "messages" in document["components"]["schemas"][f"{schema}Request"]["required"]
    assert "get" in document["paths"]["/v1/models"]


async def test_a_model_id_with_a_newline_is_openais_404(
    base_url: str, account: tuple[str, int]
) -> None:
    """Found by the fuzz test: it fell through to the API's generic 404 envelope."""
    key, _ = account
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": key}) as http:
        answer = await http.get("/v1/models/a%0Ab")
    assert_valid("ErrorResponse", answer.json())
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("path", ["/v1beta/models/a%0Ab", "/v1/models/a%0Ab"])
async def test_a_gemini_model_id_with_a_newline_is_geminis_404(
    base_url: str, account: tuple[str, int], path: str
) -> None:
    """Found by the fuzz test: /v1beta/'s fell through to the API's generic 404 envelope."""
    key, _ = account
    async with httpx.AsyncClient(base_url=base_url, headers={"x-goog-api-key": key}) as http:
        answer = await http.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["status"] == "NOT_FOUND"
    assert answer.json()["error"]["message"] == "models/a\nb is not found"
