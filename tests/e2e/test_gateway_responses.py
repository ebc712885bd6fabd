"""The official openai SDK's Responses API through bytespike: natively to an OpenAI model,
translated to Anthropic, Gemini and the mock; plain and streamed, stored, retrieved,
continued and deleted, with tools and structured output; every answer and event valid
against OpenAI's reference, every call debited exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from bytespike import catalog
from bytespike.billing import pricing
from bytespike.billing.tables import ledger_entries
from bytespike.catalog import Catalog
from bytespike.context import Context
from bytespike.responses import sweeper
from bytespike.responses.tables import stored_responses
from tests.conftest import FakeClock
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost, gateway
from tests.factories import make_key, make_user
from tests.fakes.base import FakeUpstream
from tests.openai_schema import assert_valid

NATIVE = "gpt-5-4"
TRANSLATED = ["claude-sonnet-4-6", "gemini-3-1-pro"]
UPSTREAM_MODELS = [NATIVE, *TRANSLATED]
TEXT = "Hello from the fake upstream."
START = 10_000_000  # the account fixture's $10
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Weather(BaseModel):
    city: str
    temperature: int


def sdk(base_url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)


def fake_of(fakes: Upstreams, model: str) -> FakeUpstream:
    return {NATIVE: fakes.openai, "claude-sonnet-4-6": fakes.anthropic}.get(model, fakes.gemini)


def script(fakes: Upstreams, input_tokens: int, output_tokens: int, **changes: Any) -> None:
    for fake in fakes.all():
        fake.script.input_tokens, fake.script.output_tokens = input_tokens, output_tokens
        for name, value in changes.items():
            setattr(fake.script, name, value)


def dumped(model: BaseModel) -> dict[str, Any]:
    body: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True, warnings=False)
    return body


async def spent(ctx: Context, wallet: int) -> int:
    balances = await books_balance(ctx, wallet)  # ledger.verify first
    assert balances.held == 0
    assert balances.available == START - balances.spent
    return balances.spent


async def holds_placed(ctx: Context, wallet: int) -> list[int]:
    async with ctx.db.read() as conn:
        query = (
            sa.select(ledger_entries.c.d_held)
            .where(ledger_entries.c.wallet_id == wallet, ledger_entries.c.kind == "hold")
            .order_by(ledger_entries.c.id)
        )
        return [int(held) for held in (await conn.execute(query)).scalars()]


def mock_cost(ctx: Context, usage: Any) -> int:
    return expected_cost(ctx, "mock", usage.input_tokens, usage.output_tokens)


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
async def test_a_response_is_answered_and_debited_exactly(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    script(fakes, 1234, 567)
    async with sdk(base_url, key) as client:
        response = await client.responses.create(
            model=model, instructions="Be brief.", input="Hi", max_output_tokens=1000
        )
    assert response.output_text == TEXT
    assert response.model == model and response.status == "completed"
    assert response.id.startswith("resp_") and response.store is True
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1234, 567)
    assert_valid("Response", dumped(response))
    assert await spent(ctx, wallet) == expected_cost(ctx, model, 1234, 567)
    received = fake_of(fakes, model).requests[-1]
    if model == NATIVE:
        assert fakes.openai.paths[-1] == "/v1/responses"
        assert_valid("CreateResponse", received)
        assert received["instructions"] == "Be brief." and received["input"] == "Hi"
        assert received["store"] is False and received["max_output_tokens"] == 1000
    elif model == "claude-sonnet-4-6":
        assert received["system"] == [{"type": "text", "text": "Be brief."}]
        assert received["max_tokens"] == 1000
    else:
        assert received["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


async def test_the_mock_answers_responses_and_bills_its_own_usage(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    async with sdk(base_url, key) as client:
        response = await client.responses.create(model="mock", input="Hello there")
    assert response.output_text == "[mock] You said: Hello there"
    assert_valid("Response", dumped(response))
    assert await spent(ctx, wallet) == mock_cost(ctx, response.usage)


@pytest.mark.parametrize("model", [*UPSTREAM_MODELS, "mock"])
async def test_a_streamed_response_is_a_valid_event_sequence_debited_exactly(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    script(fakes, 321, 45)
    kinds: list[str] = []
    async with (
        sdk(base_url, key) as client,
        client.responses.stream(model=model, input="Hi") as stream,
    ):
        async for event in stream:
            kinds.append(event.type)
            raw = dumped(event)
            raw.pop("snapshot", None)  # the SDK's own accumulation, not on the wire
            raw.pop("parsed", None)
            assert_valid("ResponseStreamEvent", raw)
        final = await stream.get_final_response()
        stored = await client.responses.retrieve(final.id)  # kept once the stream settled
    assert (stored.id, stored.output_text, stored.usage) == (
        final.id,
        final.output_text,
        final.usage,
    )
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert [s for s in kinds if s.endswith(".done")][-1] == "response.output_item.done"
    assert final.usage is not None
    assert_valid("Response", dumped(final))
    if model == "mock":
        assert final.output_text == "[mock] You said: Hi"
        assert await spent(ctx, wallet) == mock_cost(ctx, final.usage)
        return
    assert final.output_text == TEXT
    assert (final.usage.input_tokens, final.usage.output_tokens) == (321, 45)
    assert await spent(ctx, wallet) == expected_cost(ctx, model, 321, 45)


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
async def test_reasoning_tokens_are_billed_once_inside_the_output(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    script(fakes, 100, 50)
    async with sdk(base_url, key) as client:
        response = await client.responses.create(
            model=model, input="Think", reasoning={"effort": "high"}
        )
    assert response.usage is not None and response.usage.output_tokens == 50
    assert await spent(ctx, wallet) == expected_cost(ctx, model, 100, 50)
    received = fake_of(fakes, model).requests[-1]
    if model == NATIVE:
        assert received["reasoning"] == {"effort": "high"}
        assert response.usage.output_tokens_details.reasoning_tokens == 3
    elif model == "claude-sonnet-4-6":
        assert received["output_config"] == {"effort": "high"}
    else:
        assert received["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high"}


@pytest.mark.parametrize("model", [*UPSTREAM_MODELS, "mock"])
async def test_a_stored_response_is_retrieved_continued_and_deleted(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    script(fakes, 40, 8)
    async with sdk(base_url, key) as client:
        first = await client.responses.create(
            model=model, input="My name is Ada.", max_output_tokens=100
        )
        again = await client.responses.retrieve(first.id)
        assert dumped(again) == dumped(first)
        script(fakes, 90, 9, text="You are Ada.")
        second = await client.responses.create(
            model=model,
            input="What is my name?",
            previous_response_id=first.id,
            max_output_tokens=100,
        )
        assert second.previous_response_id == first.id
        await client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(first.id)
        before = await spent(ctx, wallet)
        with pytest.raises(openai.NotFoundError) as refused:
            await client.responses.create(model=model, input="Hm?", previous_response_id=first.id)
        assert refused.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert await spent(ctx, wallet) == before  # refused before any hold
    if model == "mock":
        assert second.output_text.startswith("[mock] You said: What is my name?")
        expected = mock_cost(ctx, first.usage) + mock_cost(ctx, second.usage)
        assert await spent(ctx, wallet) == expected
    else:
        assert second.output_text == "You are Ada."
        expected = expected_cost(ctx, model, 40, 8) + expected_cost(ctx, model, 90, 9)
        assert await spent(ctx, wallet) == expected
        assert_replayed(model, fake_of(fakes, model).requests[1])
    # The same output limit, a new input one byte longer: the second hold exceeds the first
    # by at least the replayed conversation's text (the first call's input and answer).
    catalog_model = ctx.catalog.get(model)
    assert catalog_model is not None
    replayed = len("My name is Ada.") + len(TEXT)
    first_hold, second_hold = await holds_placed(ctx, wallet)
    assert second_hold - first_hold >= pricing.input_cost(catalog_model, replayed)


def assert_replayed(model: str, received: dict[str, Any]) -> None:
    """The continuing call carried the stored conversation, then its own input."""
    if model == NATIVE:
        assert "previous_response_id" not in received and received["store"] is False
        said = [(item.get("role"), json.dumps(item["content"])) for item in received["input"]]
        assert [role for role, _ in said] == ["user", "assistant", "user"]
        assert "My name is Ada." in said[0][1] and TEXT in said[1][1]
        assert all("id" not in item for item in received["input"])  # the upstream kept none
    elif model == "claude-sonnet-4-6":
        turns = [(m["role"], json.dumps(m["content"])) for m in received["messages"]]
        assert [role for role, _ in turns] == ["user", "assistant", "user"]
        assert "My name is Ada." in turns[0][1] and TEXT in turns[1][1]
    else:
        turns = [(c["role"], json.dumps(c["parts"])) for c in received["contents"]]
        assert [role for role, _ in turns] == ["user", "model", "user"]
        assert "My name is Ada." in turns[0][1] and TEXT in turns[1][1]


async def test_a_stored_response_is_its_owners_alone(
    ctx: Context, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    other_key_of_ada = (await make_key(ctx, "ada"))["key"]
    await make_user(ctx, "bob", email="bob@dosia.ai")
    bobs_key = (await make_key(ctx, "bob"))["key"]
    async with sdk(base_url, key) as client:
        response = await client.responses.create(model="mock", input="Secret")
        unstored = await client.responses.create(model="mock", input="Gone", store=False)
    async with sdk(base_url, other_key_of_ada) as client:
        assert (await client.responses.retrieve(response.id)).id == response.id
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(unstored.id)
    async with sdk(base_url, bobs_key) as client:
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(
                model="mock", input="And?", previous_response_id=response.id
            )
    async with sdk(base_url, key) as client:
        await client.responses.delete(response.id)  # still there for its owner


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_function_tool_round_trip(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    model: str,
    stream: bool,
) -> None:
    key, wallet = account
    script(fakes, 200, 20, tool_call=("get_weather", {"city": "Paris"}))
    async with sdk(base_url, key) as client:
        if stream:
            async with client.responses.stream(
                model=model, input="Weather in Paris?", tools=[WEATHER]
            ) as events:
                async for event in events:
                    raw = dumped(event)
                    raw.pop("snapshot", None)
                    assert_valid("ResponseStreamEvent", raw)
                first = await events.get_final_response()
        else:
            first = await client.responses.create(
                model=model, input="Weather in Paris?", tools=[WEATHER]
            )
        assert_valid("Response", dumped(first))
        calls = [item for item in first.output if item.type == "function_call"]
        assert len(calls) == 1 and calls[0].name == "get_weather"
        assert json.loads(calls[0].arguments) == {"city": "Paris"}
        script(fakes, 300, 30, tool_call=None, text="Sunny, 21°C.")
        result = {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}
        second = await client.responses.create(
            model=model,
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                *[item.model_dump(exclude_none=True) for item in first.output],
                result,
            ],
            tools=[WEATHER],
            store=False,
        )
    assert second.output_text == "Sunny, 21°C."
    expected = expected_cost(ctx, model, 200, 20) + expected_cost(ctx, model, 300, 30)
    assert await spent(ctx, wallet) == expected
    assert_tool_result_sent(model, fake_of(fakes, model).requests[-1], calls[0].call_id)


def assert_tool_result_sent(model: str, received: dict[str, Any], call_id: str) -> None:
    if model == NATIVE:
        kinds = [item.get("type", "message") for item in received["input"]]
        assert kinds[-2:] == ["function_call", "function_call_output"]
        assert received["tools"][0]["name"] == "get_weather"
    elif model == "claude-sonnet-4-6":
        blocks = [b for m in received["messages"] for b in m["content"]]
        assert {"type": "tool_use", "id": call_id, "name": "get_weather"}.items() <= blocks[
            1
        ].items()
        assert blocks[2] == {"type": "tool_result", "tool_use_id": call_id, "content": "sunny"}
        assert received["tools"][0]["name"] == "get_weather"
    else:
        parts = [p for c in received["contents"] for p in c["parts"]]
        assert parts[1]["functionCall"]["name"] == "get_weather"
        assert parts[2]["functionResponse"]["name"] == "get_weather"


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
async def test_structured_output(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    script(fakes, 70, 12, text='{"city": "Paris", "temperature": 21}')
    async with sdk(base_url, key) as client:
        response = await client.responses.parse(
            model=model, input="Weather in Paris as JSON", text_format=Weather
        )
    assert response.output_parsed == Weather(city="Paris", temperature=21)
    assert await spent(ctx, wallet) == expected_cost(ctx, model, 70, 12)
    received = fake_of(fakes, model).requests[-1]
    if model == NATIVE:
        assert received["text"]["format"]["type"] == "json_schema"
        assert received["text"]["format"]["name"] == "Weather"
    elif model == "claude-sonnet-4-6":
        schema = received["output_config"]["format"]["schema"]
        assert set(schema["properties"]) == {"city", "temperature"}
    else:
        config = received["generationConfig"]
        assert config["responseMimeType"] == "application/json"


async def test_hosted_tools_are_left_out_and_codex_fields_pass(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    """What Codex CLI sends: developer messages with ids, a namespace of tools, a hosted web
    search, `include`, `store: false`, client metadata."""
    key, _ = account
    body: dict[str, Any] = {
        "model": NATIVE,
        "input": [
            {
                "type": "message",
                "id": "msg_local",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are a coding agent."}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
        "tools": [
            WEATHER,
            {
                "type": "namespace",
                "name": "agents",
                "description": "Sub-agents.",
                "tools": [{**WEATHER, "name": "spawn"}],
            },
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-1",
        "extra_body": {"client_metadata": {"session_id": "s"}},
    }
    for model in (NATIVE, "claude-sonnet-4-6"):
        async with sdk(base_url, key) as client:
            stream = await client.responses.create(**{**body, "model": model})
            kinds = [event.type async for event in stream]
        assert kinds[-1] == "response.completed"
    native = fakes.openai.requests[-1]
    assert [tool["type"] for tool in native["tools"]] == ["function", "namespace"]
    assert native["include"] == ["reasoning.encrypted_content"]
    translated = fakes.anthropic.requests[-1]
    names = [tool["name"] for tool in translated["tools"]]
    assert names == ["get_weather", "agents__spawn"]
    assert translated["system"][0]["text"] == "You are a coding agent."


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
async def test_null_fields_are_left_unset(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    """A client's null means the field's default: it does not reach OpenAI (whose
    tool_choice takes no null), nor come back as null (found by test_fuzz)."""
    key, _ = account
    body = {
        "model": model,
        "input": "Hi",
        "tools": [WEATHER],
        "tool_choice": None,
        "parallel_tool_calls": None,
        "temperature": None,
    }
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(
            "/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    assert answer.status_code == 200, answer.text
    assert_valid("Response", answer.json())
    assert answer.json()["tool_choice"] == "auto"
    assert answer.json()["parallel_tool_calls"] is True
    if model == NATIVE:
        received = fakes.openai.requests[-1]
        assert not {"tool_choice", "parallel_tool_calls", "temperature"} & received.keys()
        assert_valid("CreateResponse", received)


async def test_a_namespaced_call_comes_back_in_its_namespace(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    script(fakes, 10, 5, tool_call=("agents__spawn", {"city": "Oslo"}))
    namespace = {
        "type": "namespace",
        "name": "agents",
        "description": "Sub-agents.",
        "tools": [{**WEATHER, "name": "spawn"}],
    }
    async with sdk(base_url, key) as client:
        response = await client.responses.create(
            model="claude-sonnet-4-6",
            input="go",
            tools=[namespace],  # type: ignore[list-item]
        )
    call = response.output[0]
    assert call.type == "function_call"
    assert (call.name, getattr(call, "namespace", None)) == ("spawn", "agents")
    assert_valid("Response", dumped(response))


def compatible_catalog(tmp_path: Path, base_url: str) -> Catalog:
    """The shipped catalog and two models on one OpenAI-compatible server (the fake): one
    entry says the server speaks the Responses API, the other does not."""
    entries = "".join(
        f"""
[[models]]
id = "{model}"
provider = "openai-compatible"
base_url = "{base_url}"
input_usd_per_mtok = "1"
output_usd_per_mtok = "2"
{extra}
"""
        for model, extra in (("vllm-responses", "responses_api = true"), ("vllm-chat", ""))
    )
    path = tmp_path / "catalog.toml"
    path.write_text(catalog.SHIPPED_CATALOG.read_text() + entries)
    return catalog.load(path)


@pytest.mark.parametrize(("model", "path"), [("vllm-responses", "/v1/responses"),
                                             ("vllm-chat", "/v1/chat/completions")])  # fmt: skip
async def test_an_openai_compatible_server_gets_responses_natively_only_if_it_speaks_them(
    ctx: Context,
    fakes: Upstreams,
    account: tuple[str, int],
    tmp_path: Path,
    model: str,
    path: str,
) -> None:
    key, wallet = account
    script(fakes, 60, 6)
    models = compatible_catalog(tmp_path, fakes.openai.url)
    compatible = Context(ctx.settings, ctx.db, models, ctx.clock)
    async with gateway(compatible, fakes) as base_url, sdk(base_url, key) as client:
        response = await client.responses.create(model=model, input="Hi")
    assert response.output_text == TEXT and response.model == model
    assert fakes.openai.paths == [path]
    assert await spent(ctx, wallet) == expected_cost(compatible, model, 60, 6)


async def test_a_stored_response_is_kept_thirty_days(
    ctx: Context, clock: FakeClock, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    async with sdk(base_url, key) as client:
        old = await client.responses.create(model="mock", input="Long ago")
        clock.advance(days=29, hours=23)
        assert (await client.responses.retrieve(old.id)).id == old.id
        clock.advance(hours=2)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(old.id)
        new = await client.responses.create(model="mock", input="Now")
    assert await sweeper.sweep_once(ctx) == 1  # the server's sweeper, once
    async with ctx.db.read() as conn:
        ids = (await conn.execute(sa.select(stored_responses.c.id))).scalars().all()
    assert ids == [new.id]
