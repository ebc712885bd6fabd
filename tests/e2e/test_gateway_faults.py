"""When the upstream fails, or the client leaves: the right status in the client's format,
the hold released, nothing billed that the upstream did not report; a client that leaves
mid-stream stops the upstream and pays for what it was sent; stranded holds expire."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike.billing import holds, sweeper
from bytespike.context import Context
from bytespike.usage.tables import usage_records
from tests.conftest import FakeClock
from tests.e2e.gateway_support import Upstreams, books_balance, gateway
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes.base import FakeUpstream
from tests.processes import free_port

TEN_DOLLARS = 10_000_000
# (route, model): the OpenAI and Anthropic formats, each to an OpenAI- and an Anthropic-
# provider model (the same-format pair goes through untranslated).
PATHS = [
    ("/v1/chat/completions", "gpt-5-4"),
    ("/v1/chat/completions", "claude-sonnet-4-6"),
    ("/v1/messages", "claude-sonnet-4-6"),
    ("/v1/messages", "gpt-5-4"),
]
IDS = ["chat-openai", "chat-anthropic", "messages-anthropic", "messages-openai"]


@pytest.fixture
async def account(ctx: Context) -> tuple[dict[str, str], int]:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada")
    return {"Authorization": f"Bearer {key['key']}"}, await wallet_of(ctx, user="ada")


def upstream_of(fakes: Upstreams, model: str) -> FakeUpstream:
    return fakes.anthropic if model.startswith("claude") else fakes.openai


def body(model: str) -> dict[str, Any]:
    return {"model": model, "max_tokens": 500, "messages": [{"role": "user", "content": "Hi"}]}


def error_of(route: str, answer: httpx.Response) -> dict[str, Any]:
    """The error object, after checking the envelope is the route's client format."""
    payload = answer.json()
    if route == "/v1/messages":
        assert payload["type"] == "error" and set(payload["error"]) == {"type", "message"}
    else:
        assert set(payload["error"]) == {"message", "type", "param", "code"}
    return payload["error"]  # type: ignore[no-any-return]


async def usage_rows(ctx: Context) -> list[Any]:
    async with ctx.db.read() as conn:
        u = usage_records.c
        query = sa.select(u.status, u.http_status, u.cost_micros, u.stream, u.output_tokens)
        return list((await conn.execute(query.order_by(u.id))).all())


async def assert_untouched(ctx: Context, wallet: int) -> None:
    balances = await books_balance(ctx, wallet)
    assert (balances.available, balances.held, balances.spent) == (TEN_DOLLARS, 0, 0)


async def post(base_url: str, route: str, payload: dict[str, Any], headers: dict[str, str]) -> Any:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return await http.post(route, json=payload, headers=headers)


@pytest.mark.parametrize(("route", "model"), PATHS, ids=IDS)
async def test_an_upstream_500_is_a_502_and_costs_nothing(
    ctx: Context, fakes: Upstreams, base_url: str, account: Any, route: str, model: str
) -> None:
    headers, wallet = account
    upstream_of(fakes, model).script.status = 500
    answer = await post(base_url, route, body(model), headers)
    assert answer.status_code == 502
    # OpenAI's own type for its 5xx ("server_error") may pass through; never a client error.
    assert error_of(route, answer)["type"] in ("api_error", "server_error")
    await assert_untouched(ctx, wallet)
    assert [(r.status, r.http_status, r.cost_micros) for r in await usage_rows(ctx)] == [
        ("upstream_error", 502, 0)
    ]


@pytest.mark.parametrize(("route", "model"), PATHS, ids=IDS)
async def test_an_upstream_400_is_passed_through_with_its_message(
    ctx: Context, fakes: Upstreams, base_url: str, account: Any, route: str, model: str
) -> None:
    headers, wallet = account
    script = upstream_of(fakes, model).script
    script.status, script.error_message = 400, "temperature: must be at most 2"
    answer = await post(base_url, route, body(model), headers)
    assert answer.status_code == 400
    error = error_of(route, answer)
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "temperature: must be at most 2"
    await assert_untouched(ctx, wallet)


@pytest.mark.parametrize(("route", "model"), PATHS, ids=IDS)
async def test_a_malformed_upstream_answer_is_a_502_and_costs_nothing(
    ctx: Context, fakes: Upstreams, base_url: str, account: Any, route: str, model: str
) -> None:
    headers, wallet = account
    upstream_of(fakes, model).script.malformed = True
    answer = await post(base_url, route, body(model), headers)
    assert answer.status_code == 502
    assert error_of(route, answer)["type"] == "api_error"
    await assert_untouched(ctx, wallet)
    assert [r.status for r in await usage_rows(ctx)] == ["malformed"]


@pytest.mark.parametrize(("route", "model"), PATHS, ids=IDS)
async def test_a_silent_upstream_times_out_as_504(
    ctx: Context, fakes: Upstreams, account: Any, route: str, model: str
) -> None:
    headers, wallet = account
    ctx.settings.upstream_read_timeout_seconds = 0.3  # read when the providers are built
    upstream_of(fakes, model).script.delay = 1.0
    async with gateway(ctx, fakes) as base_url:
        answer = await post(base_url, route, body(model), headers)
    assert answer.status_code == 504
    assert error_of(route, answer)["type"] == "api_error"
    await assert_untouched(ctx, wallet)
    assert [(r.status, r.http_status) for r in await usage_rows(ctx)] == [("timeout", 504)]


@pytest.mark.parametrize(("route", "model"), PATHS, ids=IDS)
async def test_an_unreachable_upstream_is_a_502(
    ctx: Context, account: Any, route: str, model: str
) -> None:
    headers, wallet = account
    closed = f"http://127.0.0.1:{free_port()}"
    nowhere = Upstreams(
        openai=FakeUpstream(url=f"{closed}/v1"),
        anthropic=FakeUpstream(url=closed),
        gemini=FakeUpstream(url=closed),
    )
    async with gateway(ctx, nowhere) as base_url:
        answer = await post(base_url, route, body(model), headers)
    assert answer.status_code == 502
    error = error_of(route, answer)
    assert error["type"] == "api_error" and "127.0.0.1" not in error["message"]
    await assert_untouched(ctx, wallet)
    assert [r.status for r in await usage_rows(ctx)] == ["unavailable"]


async def wait_until_settled(ctx: Context, wallet: int) -> Any:
    for _ in range(200):
        balances = await books_balance(ctx, wallet)
        if balances.held == 0:
            return balances
        await asyncio.sleep(0.02)
    raise AssertionError(f"the hold was never settled: {balances}")


@pytest.mark.parametrize(("route", "model"), [*PATHS, ("/v1/chat/completions", "gemini-3-1-pro")])
async def test_a_client_leaving_mid_stream_stops_the_upstream_and_pays_for_what_it_got(
    ctx: Context, fakes: Upstreams, base_url: str, account: Any, route: str, model: str
) -> None:
    headers, wallet = account
    fake = fakes.gemini if model.startswith("gemini") else upstream_of(fakes, model)
    fake.script.text = "One two three four five six seven eight nine ten eleven twelve."
    fake.script.chunks, fake.script.stall_after_chunks = 6, 2
    first, second = fake.split()[:2]
    received = b""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        payload = {**body(model), "stream": True}
        async with http.stream("POST", route, json=payload, headers=headers) as answer:
            assert answer.status_code == 200
            async for piece in answer.aiter_bytes():
                received += piece
                if first.encode() in received and second.encode() in received:
                    break  # two content chunks arrived: hang up
    await asyncio.wait_for(fake.disconnected.wait(), timeout=5)
    balances = await wait_until_settled(ctx, wallet)
    assert balances.spent > 0  # the streamed text and the prompt were billed
    assert balances.available == TEN_DOLLARS - balances.spent
    [row] = await usage_rows(ctx)
    assert (row.status, row.stream, row.cost_micros) == ("client_closed", True, balances.spent)
    assert row.output_tokens > 0


async def test_a_hold_stranded_by_a_crash_expires_back_into_available(
    ctx: Context, clock: FakeClock, client: httpx.AsyncClient, account: Any
) -> None:
    headers, wallet = account
    async with ctx.db.write() as conn:
        await holds.place(conn, wallet, 2_500_000, now=ctx.clock.now(), ttl=ctx.hold_ttl)
    shown = (await client.get("/api/v1/me/account", headers=headers)).json()["balance"]
    assert shown["available_usd"] == 7.5
    assert await sweeper.sweep_once(ctx) == 0  # not yet due
    clock.advance(seconds=ctx.settings.hold_ttl_seconds + 1)
    assert await sweeper.sweep_once(ctx) == 1
    balances = await books_balance(ctx, wallet)
    assert (balances.available, balances.held, balances.spent) == (TEN_DOLLARS, 0, 0)
    shown = (await client.get("/api/v1/me/account", headers=headers)).json()["balance"]
    assert shown["available_usd"] == 10


@pytest.mark.parametrize(
    ("route", "model"), [PATHS[0], PATHS[2]], ids=["chat-openai", "messages-anthropic"]
)
@pytest.mark.parametrize(("upstream_status", "status"), [(400, 400), (500, 502)])
async def test_a_streamed_call_the_upstream_refuses_keeps_the_status(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: Any,
    route: str,
    model: str,
    upstream_status: int,
    status: int,
) -> None:
    """Nothing was streamed yet, so the client can still get the real status, as without
    streaming (SDKs raise their status errors, BadRequestError etc., only from it)."""
    headers, wallet = account
    script = upstream_of(fakes, model).script
    script.status, script.error_message = upstream_status, "prompt is too long"
    answer = await post(base_url, route, {**body(model), "stream": True}, headers)
    assert answer.status_code == status, answer.text
    assert error_of(route, answer)["message"] == "prompt is too long"
    await assert_untouched(ctx, wallet)
