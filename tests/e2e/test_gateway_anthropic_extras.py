"""The rest of Anthropic's API through the official anthropic SDK: count_tokens (free, rate
limited), the models list and retrieve in Anthropic's shape, system items inside
`messages`, thinking and effort mapped for every provider, and the rate-limit and
request-id headers; each metered call debited exactly, each count moving no money."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx
import pytest

from bytespike.billing import ledger, pricing
from bytespike.context import Context
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost, upstreams
from tests.factories import make_key, make_user
from tests.fakes.base import FakeUpstream

UPSTREAM_MODELS = ["claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro"]
HI: list[Any] = [{"role": "user", "content": "Hi"}]
FUNDS = 10_000_000


@pytest.fixture
async def fakes() -> AsyncIterator[Upstreams]:
    async with upstreams() as running:
        for fake in running.all():
            fake.script.input_tokens, fake.script.output_tokens = 1234, 567
        yield running


def sdk(base_url: str, key: str, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key=key, max_retries=0, **options)


def upstream_of(fakes: Upstreams, model: str) -> FakeUpstream:
    return {"claude-sonnet-4-6": fakes.anthropic, "gpt-5-4": fakes.openai}.get(model, fakes.gemini)


async def assert_untouched(ctx: Context, wallet: int) -> None:
    """Nothing held, spent or written since the top-up: the ledger has its one entry."""
    balances = await books_balance(ctx, wallet)
    assert (balances.available, balances.held, balances.spent) == (FUNDS, 0, 0)
    async with ctx.db.read() as conn:
        assert len(await ledger.entries(conn, wallet, before=None, limit=10)) == 1


async def assert_debited(ctx: Context, wallet: int, cost: int) -> None:
    balances = await books_balance(ctx, wallet)
    assert (balances.spent, balances.held, balances.available) == (cost, 0, FUNDS - cost)


# --- count_tokens ------------------------------------------------------------------------


async def test_count_tokens_on_a_claude_model_is_anthropics_own_count_and_costs_nothing(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    async with sdk(base_url, key) as client:
        counted = await client.messages.count_tokens(
            model="claude-sonnet-4-6",
            system="Be brief.",
            messages=[*HI, {"role": "system", "content": "Answer in French."}],  # type: ignore[list-item]
            extra_headers={"anthropic-beta": "token-counting-2024-11-01"},
        )
    assert counted.input_tokens == 1234  # what Anthropic's endpoint said
    [sent] = fakes.anthropic.requests
    assert fakes.anthropic.paths == ["/v1/messages/count_tokens"]
    assert sent["model"] == "claude-sonnet-4-6" and sent["messages"] == HI
    assert sent["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert fakes.anthropic.headers[0]["anthropic-beta"] == "token-counting-2024-11-01"
    await assert_untouched(ctx, wallet)


@pytest.mark.parametrize("model", ["gpt-5-4", "gemini-3-1-pro", "mock"])
async def test_count_tokens_elsewhere_is_a_quarter_of_the_input_bound_and_costs_nothing(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Hello " * 300}],
        "model": model,
    }
    async with sdk(base_url, key) as client:
        counted = await client.messages.count_tokens(**body)
    assert counted.input_tokens == math.ceil(pricing.input_bound(body) / 4)
    assert not any(fake.requests for fake in fakes.all())
    await assert_untouched(ctx, wallet)


async def test_count_tokens_is_rate_limited_like_any_call(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    _key, wallet = account
    key = (await make_key(ctx, "ada", rate_limit=1))["key"]
    async with sdk(base_url, key) as client:
        await client.messages.count_tokens(model="gpt-5-4", messages=HI)
        with pytest.raises(anthropic.RateLimitError) as refused:
            await client.messages.count_tokens(model="gpt-5-4", messages=HI)
    headers = refused.value.response.headers
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert headers["anthropic-ratelimit-requests-remaining"] == "0" and headers["retry-after"]
    await assert_untouched(ctx, wallet)


async def test_count_tokens_checks_the_roster_and_the_body(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    await make_user(ctx, "bob")
    bob = (await make_key(ctx, "bob", models=[("mock", None)]))["key"]
    async with sdk(base_url, bob) as client:
        with pytest.raises(anthropic.PermissionDeniedError):
            await client.messages.count_tokens(model="gpt-5-4", messages=HI)
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.count_tokens(model="no-such-model", messages=HI)
        with pytest.raises(anthropic.BadRequestError) as bad:
            await client.messages.count_tokens(model="mock", messages=[{"role": "user"}])  # type: ignore[typeddict-item]
    assert "messages.0.content" in bad.value.message


async def test_an_upstream_count_failure_is_passed_on_in_anthropics_envelope(
    fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _wallet = account
    fakes.anthropic.script.status, fakes.anthropic.script.error_message = 529, "busy"
    async with sdk(base_url, key) as client:
        with pytest.raises(anthropic.APIStatusError) as failed:
            await client.messages.count_tokens(model="claude-sonnet-4-6", messages=HI)
    assert failed.value.status_code == 502
    error = {"type": "overloaded_error", "message": "busy"}  # as /v1/messages passes it on
    assert failed.value.body == {"type": "error", "error": error}


# --- models ------------------------------------------------------------------------------


async def test_the_anthropic_sdk_lists_and_retrieves_models_in_anthropics_shape(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    await make_user(ctx, "bob")
    roster = ["claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro", "mock"]
    bob = (await make_key(ctx, "bob", models=[(m, None) for m in roster]))["key"]
    async with sdk(base_url, bob) as client:
        first = await client.models.list(limit=3)
        every = [model async for model in await client.models.list(limit=3)]
        before = await client.models.list(before_id="mock", limit=2)
        one = await client.models.retrieve("gpt-5-4")
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.models.retrieve("claude-haiku-4-5")
    assert [m.id for m in every] == roster  # the SDK followed last_id to the second page
    assert (first.has_more, first.first_id, first.last_id) == (True, roster[0], roster[2])
    assert [m.id for m in before.data] == roster[1:3] and before.has_more is True
    assert one.type == "model" and one.id == one.display_name == "gpt-5-4"
    assert one.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert (one.max_input_tokens, one.max_tokens) == (400_000, 128_000)
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": bob}) as http:
        openai_shape = (await http.get("/v1/models")).json()
        bad_limit = await http.get(
            "/v1/models?limit=0", headers={"anthropic-version": "2023-06-01"}
        )
    assert openai_shape["object"] == "list" and "has_more" not in openai_shape
    assert bad_limit.status_code == 400
    assert bad_limit.json()["error"]["type"] == "invalid_request_error"


# --- system items, thinking ------------------------------------------------------------


@pytest.mark.parametrize("model", [*UPSTREAM_MODELS, "mock"])
async def test_a_system_item_inside_messages_reaches_each_provider_where_it_takes_system_text(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    messages: Any = [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": [{"type": "text", "text": "Answer in French."}]},
    ]
    async with sdk(base_url, key) as client:
        reply = await client.messages.create(
            model=model, max_tokens=1000, system="Be brief.", messages=messages
        )
    billed = reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0)
    await assert_debited(ctx, wallet, expected_cost(ctx, model, billed, reply.usage.output_tokens))
    if model == "mock":
        return
    sent = upstream_of(fakes, model).requests[-1]
    if model == "claude-sonnet-4-6":
        assert sent["messages"] == [{"role": "user", "content": "Hi"}]
        assert [b["text"] for b in sent["system"]] == ["Be brief.", "Answer in French."]
    elif model == "gpt-5-4":
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Answer in French."},
        ]
    else:
        parts = sent["systemInstruction"]["parts"]
        assert parts == [{"text": "Be brief."}, {"text": "Answer in French."}]
        assert [c["role"] for c in sent["contents"]] == ["user"]


@pytest.mark.parametrize(
    ("asked", "effort"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10_000}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 30_000}}, "high"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"}}, "medium"),
        ({"thinking": {"type": "adaptive", "display": "omitted"}}, None),
        ({"thinking": {"type": "disabled"}, "output_config": {"effort": "max"}}, "xhigh"),
    ],
)
async def test_thinking_and_effort_become_reasoning_effort_and_geminis_thinking(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    asked: dict[str, Any],
    effort: str | None,
) -> None:
    key, wallet = account
    async with sdk(base_url, key) as client:
        for model in UPSTREAM_MODELS:
            await client.messages.create(model=model, max_tokens=16_000, messages=HI, **asked)
    assert fakes.openai.requests[-1].get("reasoning_effort") == effort
    config = fakes.gemini.requests[-1].get("generationConfig", {})
    levels = {"low": "low", "medium": "high", "high": "high", "xhigh": "high"}
    expected = None if effort is None else {"thinkingLevel": levels[effort]}
    assert config.get("thinkingConfig") == expected
    claude = fakes.anthropic.requests[-1]  # Anthropic takes them as they are
    assert {name: claude[name] for name in asked} == asked
    cost = sum(expected_cost(ctx, m, 1234, 567) for m in UPSTREAM_MODELS)
    await assert_debited(ctx, wallet, cost)


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "gpt-5-4"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_messages_carry_anthropics_rate_limit_headers_and_a_request_id(
    ctx: Context, base_url: str, account: tuple[str, int], model: str, stream: bool
) -> None:
    _key, wallet = account
    key = (await make_key(ctx, "ada", rate_limit=7))["key"]
    sent = datetime.now(UTC)
    async with sdk(base_url, key) as client:
        raw = await client.messages.with_raw_response.create(
            model=model, max_tokens=100, messages=HI, stream=stream
        )
        answered = datetime.now(UTC)
        reply = await raw.parse()
        if stream:
            async for _event in reply:  # type: ignore[union-attr]
                pass
    headers = raw.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "7"
    assert headers["anthropic-ratelimit-requests-remaining"] == "6"
    reset = datetime.strptime(headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ")
    # The end of the minute the call was admitted in, which lies between `sent` and
    # `answered` (a call that crosses a minute's end sees that minute's reset pass).
    reset = reset.replace(tzinfo=UTC)
    assert reset.second == 0 and sent < reset <= answered + timedelta(seconds=60)
    assert headers["x-ratelimit-limit-requests"] == "7"  # the gateway's own, as everywhere
    request_id = headers["request-id"]
    assert request_id.startswith("req_") and headers["x-request-id"] == request_id
    if not stream:
        assert reply._request_id == request_id  # type: ignore[union-attr]
    records = await recorded_calls(base_url, key)
    assert [r["request_id"] for r in records] == [request_id]
    await assert_debited(ctx, wallet, expected_cost(ctx, model, 1234, 567))


async def recorded_calls(base_url: str, key: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": key}) as http:
        data: list[dict[str, Any]] = (await http.get("/api/v1/me/usage")).json()["data"]
        return data


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("client-id-42.a:b", True), ("has spaces", False), ("x" * 65, False), ("", False)],
)
async def test_a_safe_client_request_id_is_kept_on_the_answer_and_the_usage_record(
    ctx: Context, base_url: str, account: tuple[str, int], sent: str, kept: bool
) -> None:
    key, _wallet = account
    async with sdk(base_url, key, default_headers={"x-request-id": sent}) as client:
        raw = await client.messages.with_raw_response.create(
            model="mock", max_tokens=50, messages=HI
        )
    request_id = raw.headers["x-request-id"]
    assert (request_id == sent) is kept and raw.headers["request-id"] == request_id
    assert [r["request_id"] for r in await recorded_calls(base_url, key)] == [request_id]


async def test_refusals_carry_the_request_id_and_the_rate_limit_headers_too(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    async with sdk(base_url, key) as client:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.messages.create(model="mock", max_tokens=0, messages=HI)
    headers = refused.value.response.headers
    assert headers["request-id"] == headers["x-request-id"] == refused.value.request_id
    assert headers["anthropic-ratelimit-requests-limit"]
    async with httpx.AsyncClient(base_url=base_url) as http:
        anonymous = await http.post("/v1/messages", json={})
    assert anonymous.status_code == 401 and anonymous.headers["request-id"]
    assert "anthropic-ratelimit-requests-limit" not in anonymous.headers  # no key, no limit
    await assert_untouched(ctx, wallet)


async def test_the_openapi_document_describes_count_tokens(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/v1/messages/count_tokens"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/MessagesRequest"}
    assert "402" not in operation["responses"]  # it never costs anything
