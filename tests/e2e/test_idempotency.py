"""Idempotency-Key on the metered calls, through the official SDKs and raw HTTP: a retry gets
the first answer (a stream, the same bytes) and is billed nothing more; the same key for
another request is 422 and a retry while the first runs is 409, each in its route's
envelope; a call refused before it was billed leaves the key free; twenty concurrent
identical requests over two servers are billed once. Every test checks the ledger."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest
import sqlalchemy as sa
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from bytespike.context import Context
from bytespike.idempotency.tables import idempotency_keys
from bytespike.usage.tables import usage_records
from tests.conftest import FakeClock
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost, gateway
from tests.factories import make_key, make_user, top_up, wallet_of

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

START = 10_000_000  # the account fixture's $10
IN, OUT = 1234, 567
CHAT: dict[str, Any] = {
    "model": "gpt-5-4",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 100,
}


def keyed(idempotency_key: str) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key}


def scripted(fakes: Upstreams, input_tokens: int = IN, output_tokens: int = OUT) -> None:
    for fake in fakes.all():
        fake.script.input_tokens, fake.script.output_tokens = input_tokens, output_tokens


def dumped(model: Any, **exclude: Any) -> Any:
    """An SDK object as JSON data, to compare two answers (SDK unions warn otherwise)."""
    return model.model_dump(mode="json", warnings=False, **exclude)


def upstream_calls(fakes: Upstreams) -> int:
    return sum(len(fake.requests) for fake in fakes.all())


async def spent(ctx: Context, wallet: int) -> int:
    """What the wallet has been charged, once `ledger.verify` passes and nothing is held."""
    balances = await books_balance(ctx, wallet)
    assert balances.held == 0
    assert balances.available == START - balances.spent
    return balances.spent


async def calls_recorded(ctx: Context) -> int:
    async with ctx.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(usage_records)
        return int((await conn.execute(query)).scalar_one())


async def claim_states(ctx: Context) -> list[str]:
    async with ctx.db.read() as conn:
        rows = await conn.execute(sa.select(idempotency_keys.c.state))
        return sorted(rows.scalars())


async def answered(ctx: Context) -> None:
    """Wait until the first call's answer is kept: a stream settles (and its answer is kept)
    as its response closes, which its client may see a moment before."""
    deadline = asyncio.get_running_loop().time() + 10
    while await claim_states(ctx) != ["answered"]:
        assert asyncio.get_running_loop().time() < deadline, await claim_states(ctx)
        await asyncio.sleep(0.01)


def openai_sdk(base_url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)


def anthropic_sdk(base_url: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key=key, max_retries=0)


def genai_sdk(base_url: str, key: str) -> genai.Client:
    options = types.HttpOptions(base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key=key, http_options=options)


def genai_config(idempotency_key: str, **fields: Any) -> types.GenerateContentConfig:
    options = types.HttpOptions(headers=keyed(idempotency_key))
    return types.GenerateContentConfig(http_options=options, **fields)


# Each SDK call made twice with one key: what it answered (comparable), the model billed,
# and the tokens it reported.
Call = Callable[[str, str, str], Awaitable[tuple[Any, str, int, int]]]


async def chat(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    async with openai_sdk(base_url, key) as client:
        reply = await client.chat.completions.create(
            model="gpt-5-4", messages=[{"role": "user", "content": "Hi"}], extra_headers=keyed(idem)
        )
    assert reply.usage is not None
    return dumped(reply), "gpt-5-4", reply.usage.prompt_tokens, reply.usage.completion_tokens


async def chat_stream(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    async with openai_sdk(base_url, key) as client:
        stream = await client.chat.completions.create(
            model="claude-sonnet-4-6",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=keyed(idem),
        )
        chunks = [dumped(chunk) async for chunk in stream]
    usage = chunks[-1]["usage"]
    return chunks, "claude-sonnet-4-6", usage["prompt_tokens"], usage["completion_tokens"]


async def responses_stream(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    async with (
        openai_sdk(base_url, key) as client,
        client.responses.stream(
            model="gemini-3-1-pro", input="Hi", extra_headers=keyed(idem)
        ) as stream,
    ):
        events = [dumped(event) async for event in stream]
        final = await stream.get_final_response()
    assert final.usage is not None
    usage = final.usage
    return events, "gemini-3-1-pro", usage.input_tokens, usage.output_tokens


async def embeddings(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    async with openai_sdk(base_url, key) as client:
        reply = await client.embeddings.create(
            model="text-embedding-3-small", input=["a", "b"], extra_headers=keyed(idem)
        )
    return dumped(reply), "text-embedding-3-small", reply.usage.prompt_tokens, 0


async def message(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    async with anthropic_sdk(base_url, key) as client:
        reply = await client.messages.create(
            model="gpt-5-4",
            max_tokens=100,
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers=keyed(idem),
        )
    usage = reply.usage
    return dumped(reply), "gpt-5-4", usage.input_tokens, usage.output_tokens


async def message_stream(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    async with (
        anthropic_sdk(base_url, key) as client,
        client.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=100,
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers=keyed(idem),
        ) as stream,
    ):
        events = [dumped(event) async for event in stream]
        final = await stream.get_final_message()
    usage = final.usage
    return events, "claude-sonnet-4-6", usage.input_tokens, usage.output_tokens


async def generate(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    reply = await genai_sdk(base_url, key).aio.models.generate_content(
        model="gemini-3-1-pro", contents="Hi", config=genai_config(idem)
    )
    usage = reply.usage_metadata
    assert usage is not None
    answer = dumped(reply, exclude={"sdk_http_response"})
    return (
        answer,
        "gemini-3-1-pro",
        usage.prompt_token_count or 0,
        usage.candidates_token_count or 0,
    )


async def generate_stream(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    stream = await genai_sdk(base_url, key).aio.models.generate_content_stream(
        model="gpt-5-4", contents="Hi", config=genai_config(idem)
    )
    chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage_metadata
    assert usage is not None
    answer = [dumped(chunk, exclude={"sdk_http_response"}) for chunk in chunks]
    return answer, "gpt-5-4", usage.prompt_token_count or 0, usage.candidates_token_count or 0


async def embed(base_url: str, key: str, idem: str) -> tuple[Any, str, int, int]:
    config = types.EmbedContentConfig(http_options=types.HttpOptions(headers=keyed(idem)))
    reply = await genai_sdk(base_url, key).aio.models.embed_content(
        model="gemini-embedding-001", contents=["a", "b"], config=config
    )
    answer = dumped(reply, exclude={"sdk_http_response"})
    return answer, "gemini-embedding-001", IN, 0  # the usage the fake reports (scripted)


CALLS: dict[str, Call] = {
    "chat": chat,
    "chat-stream": chat_stream,
    "responses-stream": responses_stream,
    "embeddings": embeddings,
    "messages": message,
    "messages-stream": message_stream,
    "generate-content": generate,
    "stream-generate-content": generate_stream,
    "embed-content": embed,
}


@pytest.mark.parametrize("name", CALLS)
async def test_a_retry_gets_the_first_answer_and_is_billed_once(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], name: str
) -> None:
    key, wallet = account
    scripted(fakes)
    first, model, input_tokens, output_tokens = await CALLS[name](base_url, key, "retry-1")
    await answered(ctx)
    charged = await spent(ctx, wallet)
    assert charged == expected_cost(ctx, model, input_tokens, output_tokens) > 0
    again, *_ = await CALLS[name](base_url, key, "retry-1")
    assert again == first
    assert upstream_calls(fakes) == 1 and await calls_recorded(ctx) == 1
    assert await spent(ctx, wallet) == charged
    assert await claim_states(ctx) == ["answered"]


STREAMS = {
    "chat": ("/v1/chat/completions", {**CHAT, "stream": True}),
    "messages": (
        "/v1/messages",
        {
            "model": "gemini-3-1-pro",
            "max_tokens": 100,
            "stream": True,
            "messages": CHAT["messages"],
        },
    ),
    "responses": ("/v1/responses", {"model": "claude-sonnet-4-6", "input": "Hi", "stream": True}),
    "gemini-sse": (
        "/v1beta/models/gpt-5-4:streamGenerateContent?alt=sse",
        {"contents": [{"parts": [{"text": "Hi"}]}]},
    ),
    "gemini-json-array": (
        "/v1beta/models/gemini-3-1-pro:streamGenerateContent",
        {"contents": [{"parts": [{"text": "Hi"}]}]},
    ),
}


@pytest.mark.parametrize("name", STREAMS)
async def test_a_replayed_stream_is_the_same_bytes(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], name: str
) -> None:
    key, wallet = account
    scripted(fakes, 100, 20)
    path, body = STREAMS[name]
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key, **keyed("stream-1")}
    async with httpx.AsyncClient(base_url=base_url) as http:
        first = await http.post(path, json=body, headers=headers)
        await answered(ctx)
        charged = await spent(ctx, wallet)
        again = await http.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and len(first.content) > 100
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["original-request"] == first.headers["x-request-id"]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert upstream_calls(fakes) == 1
    assert charged > 0 and await spent(ctx, wallet) == charged


async def test_the_same_key_for_another_request_is_422_in_each_routes_envelope(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    async with openai_sdk(base_url, key) as client:
        await client.chat.completions.create(
            model="gpt-5-4", messages=[{"role": "user", "content": "Hi"}], extra_headers=keyed("k")
        )
        charged = await spent(ctx, wallet)
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            await client.chat.completions.create(
                model="gpt-5-4",
                messages=[{"role": "user", "content": "Hello"}],
                extra_headers=keyed("k"),
            )
    assert refused.value.code == "idempotency_key_reused"
    assert refused.value.type == "invalid_request_error"
    # Another route with the same body and key is another request too.
    async with anthropic_sdk(base_url, key) as claude:
        with pytest.raises(anthropic.UnprocessableEntityError) as refused_too:
            await claude.messages.create(
                model="gpt-5-4",
                max_tokens=100,
                messages=[{"role": "user", "content": "Hi"}],
                extra_headers=keyed("k"),
            )
    assert isinstance(refused_too.value.body, dict)
    assert refused_too.value.body["type"] == "error"
    assert refused_too.value.body["error"]["type"] == "invalid_request_error"
    assert "different request" in refused_too.value.body["error"]["message"]
    with pytest.raises(genai_errors.ClientError) as refused_by_google:
        await genai_sdk(base_url, key).aio.models.generate_content(
            model="gpt-5-4", contents="Hi", config=genai_config("k")
        )
    assert refused_by_google.value.code == 422
    assert refused_by_google.value.status == "INVALID_ARGUMENT"
    assert refused_by_google.value.details["error"]["details"][0]["reason"] == (
        "IDEMPOTENCY_KEY_REUSED"
    )
    assert upstream_calls(fakes) == 1
    assert await spent(ctx, wallet) == charged


async def test_a_retry_while_the_first_runs_is_409_then_the_first_answer(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    scripted(fakes, 100, 20)
    resume = asyncio.Event()
    fakes.openai.script.stall_after_chunks, fakes.openai.script.resume = 1, resume
    body = {**CHAT, "stream": True}
    headers = {"Authorization": f"Bearer {key}", **keyed("slow")}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as first:
            pieces = first.aiter_bytes()
            received = await anext(pieces)  # the call is under way: its first event is here
            async with openai_sdk(base_url, key) as client:
                with pytest.raises(openai.ConflictError) as busy:
                    await client.chat.completions.create(**body, extra_headers=keyed("slow"))
            assert busy.value.code == "idempotency_key_in_use"
            assert "x-should-retry" not in busy.value.response.headers  # retrying is right
            resume.set()
            received += b"".join([piece async for piece in pieces])
        await answered(ctx)
        replay = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert replay.content == received and replay.headers["idempotent-replayed"] == "true"
    assert upstream_calls(fakes) == 1
    assert await spent(ctx, wallet) == expected_cost(ctx, "gpt-5-4", 100, 20)


async def test_twenty_concurrent_identical_requests_on_two_servers_are_billed_once(
    ctx: Context, fakes: Upstreams, account: tuple[str, int]
) -> None:
    key, wallet = account
    scripted(fakes, 100, 20)
    fakes.openai.script.delay = 0.05  # the first call is still running as the others arrive
    headers = {"Authorization": f"Bearer {key}", **keyed("storm")}
    async with (
        gateway(ctx, fakes) as one,
        gateway(ctx, fakes) as two,
        httpx.AsyncClient(timeout=30) as http,
    ):

        async def call(url: str) -> str:
            answer = await http.post(f"{url}/v1/chat/completions", json=CHAT, headers=headers)
            if answer.status_code == 409:
                return f"409 {answer.json()['error']['code']}"
            assert answer.status_code == 200, answer.text
            return "replayed" if answer.headers.get("idempotent-replayed") else "answered"

        outcomes = Counter(await asyncio.gather(*(call(url) for url in [one, two] * 10)))
    assert outcomes["answered"] == 1, outcomes
    assert set(outcomes) <= {"answered", "replayed", "409 idempotency_key_in_use"}, outcomes
    assert upstream_calls(fakes) == 1 and await calls_recorded(ctx) == 1
    assert await spent(ctx, wallet) == expected_cost(ctx, "gpt-5-4", 100, 20)


async def test_refusals_before_the_bill_leave_the_key_for_the_retry(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    """A 402 at the hold and an upstream 503 billed nothing: the same key, once the cause
    is gone, runs the call (and bills it) as if it were new."""
    await make_user(ctx, "bo")
    await top_up(ctx, "0.0001", user="bo")
    key = (await make_key(ctx, "bo"))["key"]
    wallet = await wallet_of(ctx, user="bo")
    scripted(fakes, 100, 20)
    async with openai_sdk(base_url, key) as client:
        request: dict[str, Any] = {"model": "gpt-5-4", "messages": CHAT["messages"]}
        with pytest.raises(openai.APIStatusError) as poor:
            await client.chat.completions.create(**request, extra_headers=keyed("k"))
        assert poor.value.status_code == 402
        await top_up(ctx, "1", user="bo")
        fakes.openai.script.status = 503
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(**request, extra_headers=keyed("k"))
        assert await claim_states(ctx) == []
        fakes.openai.script.status = 200
        refused = len(fakes.openai.requests)
        reply = await client.chat.completions.create(**request, extra_headers=keyed("k"))
        again = await client.chat.completions.create(**request, extra_headers=keyed("k"))
    assert again == reply
    assert len(fakes.openai.requests) == refused + 1  # the retry ran; its replay did not
    balances = await books_balance(ctx, wallet)
    assert balances.held == 0
    assert balances.spent == expected_cost(ctx, "gpt-5-4", 100, 20)


async def test_a_stream_the_client_left_is_kept_as_far_as_it_went(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    """Billed for what was streamed (an estimate), so kept: a retry replays the same
    unfinished stream and bills nothing more; a new key asks again."""
    key, wallet = account
    fakes.openai.script.stall_after_chunks = 1
    body = {**CHAT, "stream": True}
    headers = {"Authorization": f"Bearer {key}", **keyed("left")}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as first:
            received = await anext(first.aiter_bytes())
        await answered(ctx)
        charged = await spent(ctx, wallet)
        replay = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert replay.content.startswith(received) and b"[DONE]" not in replay.content
    assert charged > 0 and await spent(ctx, wallet) == charged
    assert upstream_calls(fakes) == 1


async def test_keys_are_kept_24_hours_and_per_api_key(
    ctx: Context, clock: FakeClock, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    other = (await make_key(ctx, "ada"))["key"]  # another key of the same wallet
    scripted(fakes, 100, 20)
    once = expected_cost(ctx, "gpt-5-4", 100, 20)
    async with openai_sdk(base_url, key) as client, openai_sdk(base_url, other) as client2:
        request: dict[str, Any] = {"model": "gpt-5-4", "messages": CHAT["messages"]}
        await client.chat.completions.create(**request, extra_headers=keyed("day"))
        await client2.chat.completions.create(**request, extra_headers=keyed("day"))
        assert await spent(ctx, wallet) == 2 * once  # one key's claims are not another's
        clock.advance(hours=23, minutes=59)
        await client.chat.completions.create(**request, extra_headers=keyed("day"))
        assert await spent(ctx, wallet) == 2 * once
        clock.advance(minutes=1)
        await client.chat.completions.create(**request, extra_headers=keyed("day"))
    assert await spent(ctx, wallet) == 3 * once
    assert upstream_calls(fakes) == 3


@pytest.mark.parametrize(
    ("value", "status"), [("x" * 255, 200), ("x" * 256, 400), ("", 400), ("tab\tkey", 400)]
)
async def test_an_idempotency_key_is_1_to_255_printable_characters(
    ctx: Context, base_url: str, account: tuple[str, int], value: str, status: int
) -> None:
    key, wallet = account
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": value}
    body = {"model": "mock", "messages": [{"role": "user", "content": "Hi"}]}
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 400:
        assert answer.json()["error"]["code"] == "invalid_idempotency_key"
        assert await spent(ctx, wallet) == 0
