"""Refusals in the client's own format, with the right status and type, through both SDKs:
auth (401), rate limit (429), roster (403), unknown model (404), bad requests (400), money
limits (402, never 429), paused orgs (403); either key header on every route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.orgs import service as orgs
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.webhooks import service as webhooks
from bytespike.webhooks.tables import webhook_events
from tests.e2e.gateway_support import Upstreams, books_balance, gateway
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.openai_schema import assert_valid

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
async def base_url(ctx: Context, fakes: Upstreams) -> AsyncIterator[str]:
    # A frozen clock for the limiter: a minute boundary can never reset a window mid-test.
    async with gateway(ctx, fakes, MemoryRateLimiter(now=lambda: 1_000_000.0)) as url:
        yield url


@pytest.fixture
async def ada(ctx: Context) -> dict[str, Any]:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    return await make_key(ctx, "ada")


def openai_sdk(base_url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)


def anthropic_sdk(base_url: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key=key, max_retries=0)


def openai_error(exc: openai.APIStatusError, status: int, type_: str) -> dict[str, Any]:
    body = exc.response.json()
    assert_valid("ErrorResponse", body)
    assert exc.status_code == status and body["error"]["type"] == type_, body
    return body["error"]  # type: ignore[no-any-return]


def anthropic_error(exc: anthropic.APIStatusError, status: int, type_: str) -> str:
    body = exc.response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert exc.status_code == status and body["error"]["type"] == type_, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]  # type: ignore[no-any-return]


async def chat(base_url: str, key: str, model: str = "gpt-5-4", **extra: Any) -> Any:
    async with openai_sdk(base_url, key) as client:
        return await client.chat.completions.create(model=model, messages=HI, **extra)  # type: ignore[arg-type]


async def message(base_url: str, key: str, model: str = "gpt-5-4", **extra: Any) -> Any:
    async with anthropic_sdk(base_url, key) as client:
        return await client.messages.create(model=model, max_tokens=100, messages=HI, **extra)  # type: ignore[arg-type]


async def test_missing_and_unknown_keys_are_401_in_each_format(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        missing = await http.post("/v1/chat/completions", json={"model": "gpt-5-4", "messages": HI})
        anthropic_missing = await http.post("/v1/messages", json={"model": "gpt-5-4"})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert_valid("ErrorResponse", missing.json())
    assert anthropic_missing.status_code == 401
    assert anthropic_missing.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError) as refused:
        await chat(base_url, "bsk-" + "0" * 40)
    openai_error(refused.value, 401, "authentication_error")
    with pytest.raises(anthropic.AuthenticationError) as denied:
        await message(base_url, "bsk-" + "0" * 40)
    anthropic_error(denied.value, 401, "authentication_error")


async def test_the_key_is_checked_before_the_body(base_url: str) -> None:
    """401 comes first, as on every other key route: no body is read for a stranger."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        chat_answer = await http.post("/v1/chat/completions", content=b"{not json")
        messages_answer = await http.post("/v1/messages", content=b"{not json")
    assert chat_answer.status_code == 401, chat_answer.text
    assert_valid("ErrorResponse", chat_answer.json())
    assert messages_answer.status_code == 401, messages_answer.text
    assert messages_answer.json()["error"]["type"] == "authentication_error"


async def test_a_revoked_key_is_refused_on_the_very_next_call(
    ctx: Context, fakes: Upstreams, base_url: str, ada: dict[str, Any]
) -> None:
    await chat(base_url, ada["key"])  # the key is now cached by the gateway
    await message(base_url, ada["key"])
    spent_before = (await books_balance(ctx, await wallet_of(ctx, user="ada"))).spent
    await keys.revoke(ctx, ada["id"])
    with pytest.raises(openai.AuthenticationError) as refused:
        await chat(base_url, ada["key"])
    assert "revoked" in openai_error(refused.value, 401, "authentication_error")["message"]
    with pytest.raises(anthropic.AuthenticationError) as denied:
        await message(base_url, ada["key"])
    assert "revoked" in anthropic_error(denied.value, 401, "authentication_error")
    assert len(fakes.openai.requests) == 2  # nothing reached the upstream after the revocation
    balances = await books_balance(ctx, await wallet_of(ctx, user="ada"))
    assert (balances.spent, balances.held) == (spent_before, 0)


async def test_a_revoked_key_can_no_longer_list_models(
    ctx: Context, base_url: str, ada: dict[str, Any]
) -> None:
    async with openai_sdk(base_url, ada["key"]) as client:
        assert len((await client.models.list()).data) == 6  # cached from here on
        await keys.revoke(ctx, ada["id"])
        with pytest.raises(openai.AuthenticationError) as refused:
            await client.models.list()
    openai_error(refused.value, 401, "authentication_error")


async def test_past_the_rate_limit_is_429_with_retry_after(ctx: Context, base_url: str) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx, "ada", rate_limit=1))["key"]
    await chat(base_url, key)
    with pytest.raises(openai.RateLimitError) as limited:
        await chat(base_url, key)
    openai_error(limited.value, 429, "rate_limit_error")
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60
    with pytest.raises(anthropic.RateLimitError) as also_limited:
        await message(base_url, key)
    anthropic_error(also_limited.value, 429, "rate_limit_error")
    assert also_limited.value.response.headers["retry-after"]


async def test_a_model_off_the_roster_is_403_and_an_unknown_one_404(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx, "ada", models=[("gpt-5-4", None)]))["key"]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await chat(base_url, key, model="claude-sonnet-4-6")
    assert openai_error(denied.value, 403, "permission_error")["code"] == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError) as also_denied:
        await message(base_url, key, model="claude-sonnet-4-6")
    anthropic_error(also_denied.value, 403, "permission_error")
    with pytest.raises(openai.NotFoundError) as missing:
        await chat(base_url, key, model="gpt-9")
    assert openai_error(missing.value, 404, "not_found_error")["code"] == "model_not_found"
    with pytest.raises(anthropic.NotFoundError) as also_missing:
        await message(base_url, key, model="gpt-9")
    anthropic_error(also_missing.value, 404, "not_found_error")
    assert fakes.anthropic.requests == [] and fakes.openai.requests == []


async def test_bad_json_and_missing_messages_are_400(base_url: str, ada: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {ada['key']}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        bad_json = await http.post("/v1/chat/completions", content=b'{"model": "gpt-5-4",')
        no_messages = await http.post("/v1/chat/completions", json={"model": "gpt-5-4"})
        anthropic_bad = await http.post("/v1/messages", content=b"[not json")
        anthropic_none = await http.post("/v1/messages", json={"model": "gpt-5-4", "messages": []})
    for answer in (bad_json, no_messages):
        assert (
            answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"
        )
        assert_valid("ErrorResponse", answer.json())
    assert no_messages.json()["error"]["param"] == "messages"
    for answer in (anthropic_bad, anthropic_none):
        assert answer.status_code == 400
        assert answer.json()["type"] == "error"
        assert answer.json()["error"]["type"] == "invalid_request_error"


async def test_an_empty_wallet_is_402_insufficient_balance_not_429(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "0.000001", user="ada")
    key = (await make_key(ctx, "ada"))["key"]
    with pytest.raises(openai.APIStatusError) as broke:
        await chat(base_url, key)
    assert openai_error(broke.value, 402, "billing_error")["code"] == "insufficient_balance"
    with pytest.raises(anthropic.APIStatusError) as also_broke:
        await message(base_url, key, model="claude-sonnet-4-6")
    anthropic_error(also_broke.value, 402, "billing_error")
    assert fakes.openai.requests == [] and fakes.anthropic.requests == []
    balances = await books_balance(ctx, await wallet_of(ctx, user="ada"))
    assert (balances.available, balances.held, balances.spent) == (1, 0, 0)


async def test_a_key_at_its_model_cap_is_402_quota_cap_reached_and_an_event_is_emitted(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    capped = await make_key(ctx, "ada", models=[("gpt-5-4", 4_000), ("claude-sonnet-4-6", None)])
    ctx.settings.webhook_allow_private = True
    record = await keys.resolve(ctx, capped["key"])
    await webhooks.create(
        ctx,
        record,
        url="http://127.0.0.1:9/hook",
        event_types=["quota.cap_reached"],
        description=None,
    )
    fakes.openai.script.input_tokens, fakes.openai.script.output_tokens = 400, 200  # 1000 + 3000
    await chat(base_url, capped["key"], max_completion_tokens=100)
    with pytest.raises(openai.APIStatusError) as capped_out:
        await chat(base_url, capped["key"], max_completion_tokens=100)
    assert openai_error(capped_out.value, 402, "billing_error")["code"] == "quota_cap_reached"
    with pytest.raises(anthropic.APIStatusError) as also_capped:
        await message(base_url, capped["key"])
    assert "cap" in anthropic_error(also_capped.value, 402, "billing_error")
    await message(base_url, capped["key"], model="claude-sonnet-4-6")  # other models still work
    assert len(fakes.openai.requests) == 1
    async with ctx.db.read() as conn:
        rows = (
            await conn.execute(sa.select(webhook_events.c.type, webhook_events.c.payload))
        ).all()
    assert [row.type for row in rows] == ["quota.cap_reached"]
    assert '"model":"gpt-5-4"' in rows[0].payload and '"quota_cap_usd":0.004' in rows[0].payload


async def test_either_key_header_works_on_every_route(base_url: str, ada: dict[str, Any]) -> None:
    bearer = {"Authorization": f"Bearer {ada['key']}"}
    api_key = {"x-api-key": ada["key"]}
    chat_body = {"model": "gpt-5-4", "messages": HI}
    message_body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": HI}
    async with httpx.AsyncClient(base_url=base_url) as http:
        for headers in (bearer, api_key):
            answers = [
                await http.post("/v1/chat/completions", json=chat_body, headers=headers),
                await http.post("/v1/messages", json=message_body, headers=headers),
                await http.get("/v1/models", headers=headers),
                await http.get("/v1/models/gpt-5-4", headers=headers),
                await http.get("/api/v1/me/account", headers=headers),
                await http.get("/api/v1/me/usage", headers=headers),
            ]
            assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]


async def test_a_paused_orgs_key_is_403_even_once_cached(ctx: Context, base_url: str) -> None:
    await make_user(ctx, "ada", tier="enterprise")
    await make_user(ctx, "bob", tier="enterprise")
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", role="owner")
    await add_member(ctx, "Dosia AI", "bob")
    await top_up(ctx, "10", org="Dosia AI")
    ada = (await make_key(ctx, "ada", org="Dosia AI"))["key"]
    bob = (await make_key(ctx, "bob", org="Dosia AI"))["key"]
    await chat(base_url, ada)  # ada's key is cached before the pause, bob's is not
    await orgs.set_paused(ctx, org="Dosia AI", paused=True)
    for key in (ada, bob):
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await chat(base_url, key)
        assert "paused" in openai_error(denied.value, 403, "permission_error")["message"]
        with pytest.raises(anthropic.PermissionDeniedError) as also_denied:
            await message(base_url, key)
        anthropic_error(also_denied.value, 403, "permission_error")
    balances = await books_balance(ctx, await wallet_of(ctx, org="Dosia AI"))
    assert balances.held == 0


async def test_refusals_after_the_rate_count_carry_the_rate_limit_headers(
    ctx: Context, base_url: str
) -> None:
    """Once a call has been counted, its answer says how much of the limit is left, whatever
    refuses it afterwards: the body, the model, the roster, the money."""
    await make_user(ctx, "ada")
    await top_up(ctx, "0.000001", user="ada")
    key = (await make_key(ctx, "ada", models=[("gpt-5-4", None)]))["key"]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        answers = [
            await http.post("/v1/chat/completions", content=b"{not json"),
            await http.post("/v1/chat/completions", json={"model": "gpt-5-4", "n": 2}),
            await http.post("/v1/messages", json={"model": "gpt-5-4", "messages": []}),
            await http.post("/v1/chat/completions", json={"model": "gpt-9", "messages": []}),
            await http.post("/v1/messages", json={"model": "claude-sonnet-4-6", "messages": []}),
            await http.get("/v1/models/gpt-9"),
            await http.post(
                "/v1/chat/completions",
                json={"model": "gpt-5-4", "messages": [{"role": "user", "content": "hi"}]},
            ),
        ]
    assert [a.status_code for a in answers] == [400, 400, 400, 404, 403, 404, 402]
    remaining = [int(a.headers["x-ratelimit-remaining-requests"]) for a in answers]
    assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == len(answers)
    assert all(a.headers["x-ratelimit-limit-requests"] == "600" for a in answers)
