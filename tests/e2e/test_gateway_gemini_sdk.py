"""The official google-genai SDK through bytespike's Gemini routes: to a Gemini model
(native, untranslated) and to OpenAI, Anthropic and mock models (translated), with the
exact debit in the ledger after each call; and the same routes by hand where the SDK does
not go (a stream without alt=sse, embedContent, keys in the query, refusals)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from bytespike.context import Context
from bytespike.proxy import gemini
from bytespike.upstream.registry import Providers
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost, gateway
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes import gemini as fake_gemini
from tests.fakes.base import FakeUpstream, serve
from tests.fakes.openai import vector

# The SDK's async client subclasses aiohttp's ClientSession, which aiohttp warns about; the
# SDK's default transport is the one its users get, so it is the one tested.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

MODELS = ["gemini-3-1-pro", "gpt-5-4", "claude-sonnet-4-6", "mock"]
FAKE_TEXT = "Hello from the fake upstream."
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)


def client(base_url: str, key: str, version: str = "v1beta") -> genai.Client:
    return genai.Client(api_key=key, http_options={"base_url": base_url, "api_version": version})


def scripted(fakes: Upstreams, input_tokens: int, output_tokens: int) -> None:
    for fake in fakes.all():
        fake.script.input_tokens, fake.script.output_tokens = input_tokens, output_tokens


def debit(ctx: Context, model: str, usage: types.GenerateContentResponseUsageMetadata) -> int:
    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    return expected_cost(ctx, model, usage.prompt_token_count or 0, output)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize("model", MODELS)
async def test_generate_content_is_answered_and_debited_exactly(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    model: str,
    version: str,
) -> None:
    key, wallet = account
    scripted(fakes, 1234, 567)
    config = types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=100)
    reply = await client(base_url, key, version).aio.models.generate_content(
        model=model, contents="Hello there", config=config
    )
    usage = reply.usage_metadata
    assert usage is not None
    if model == "mock":
        assert reply.text == "[mock] You said: Hello there"
    else:
        assert reply.text == FAKE_TEXT
        assert (usage.prompt_token_count, usage.candidates_token_count) == (1234, 567)
    assert reply.candidates and reply.candidates[0].finish_reason == types.FinishReason.STOP
    balances = await books_balance(ctx, wallet)
    assert balances.spent == debit(ctx, model, usage) and balances.held == 0


async def test_a_gemini_model_gets_the_request_untranslated(
    fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        max_output_tokens=100,
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW),
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
            )
        ],
    )
    await client(base_url, key).aio.models.generate_content(
        model="gemini-3-1-pro", contents="Hello there", config=config
    )
    assert fakes.gemini.paths == ["/v1beta/models/gemini-3.1-pro-preview:generateContent"]
    sent = fakes.gemini.requests[0]
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Hello there"}]}]
    assert sent["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert sent["generationConfig"] == {
        "maxOutputTokens": 100,
        "thinkingConfig": {"thinkingLevel": "LOW"},
    }
    assert sent["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}
    ]
    assert fakes.gemini.headers[0]["x-goog-api-key"] == "upstream-gemini"


async def test_other_models_get_it_translated_with_the_holds_output_limit(
    fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        temperature=0.5,
        stop_sequences=["END"],
        thinking_config=types.ThinkingConfig(thinking_budget=2048),
        response_mime_type="application/json",
    )
    await client(base_url, key).aio.models.generate_content(
        model="gpt-5-4", contents="Hello there", config=config
    )
    sent = fakes.openai.requests[0]
    assert sent["model"] == "gpt-5.4"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    assert (sent["temperature"], sent["stop"], sent["reasoning_effort"]) == (0.5, ["END"], "medium")
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["max_completion_tokens"] == 128_000  # the model's most, which the hold covers


@pytest.mark.parametrize("model", MODELS)
async def test_a_streamed_call_is_debited_exactly(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    scripted(fakes, 321, 45)
    text, usage = "", None
    stream = await client(base_url, key).aio.models.generate_content_stream(
        model=model, contents="Hello there"
    )
    async for chunk in stream:
        text += chunk.text or ""
        usage = chunk.usage_metadata or usage
    assert text == ("[mock] You said: Hello there" if model == "mock" else FAKE_TEXT)
    assert usage is not None
    if model != "mock":
        assert (usage.prompt_token_count, usage.candidates_token_count) == (321, 45)
    balances = await books_balance(ctx, wallet)
    assert balances.spent == debit(ctx, model, usage) and balances.held == 0


@pytest.mark.parametrize("model", ["gemini-3-1-pro", "gpt-5-4"])
async def test_without_alt_sse_a_stream_is_one_json_array(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    scripted(fakes, 100, 20)
    body = {"contents": [{"parts": [{"text": "Hi"}]}]}
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(
            f"/v1beta/models/{model}:streamGenerateContent",
            json=body,
            headers={"x-goog-api-key": key},
        )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/json"
    )
    events = orjson.loads(answer.content)
    assert isinstance(events, list) and len(events) > 1
    texts = [p.get("text", "") for e in events for p in e["candidates"][0]["content"]["parts"]]
    assert "".join(texts) == FAKE_TEXT
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["promptTokenCount"] == 100
    assert (await books_balance(ctx, wallet)).spent == expected_cost(ctx, model, 100, 20)


async def test_a_tool_round_trip_to_a_translated_model(
    fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    fakes.openai.script.tool_call = ("get_weather", {"city": "Paris"})
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    sdk = client(base_url, key).aio.models
    asked = types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])
    reply = await sdk.generate_content(model="gpt-5-4", contents=[asked], config=config)
    assert reply.function_calls and reply.function_calls[0].name == "get_weather"
    call = reply.function_calls[0]
    assert call.args == {"city": "Paris"} and call.id == "call_fake0001"
    tools = fakes.openai.requests[0]["tools"]
    assert tools[0]["function"]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    fakes.openai.script.tool_call = None
    answered = types.Part.from_function_response(name="get_weather", response={"sky": "clear"})
    history = [asked, reply.candidates[0].content, types.Content(role="user", parts=[answered])]  # type: ignore[index]
    final = await sdk.generate_content(model="gpt-5-4", contents=history, config=config)
    assert final.text == FAKE_TEXT
    messages = fakes.openai.requests[1]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_fake0001"
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": "call_fake0001",
        "content": '{"sky":"clear"}',
    }


@pytest.mark.parametrize("model", ["gemini-3-1-pro", "gpt-5-4", "mock"])
async def test_count_tokens_is_free(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    fakes.gemini.script.input_tokens = 4321
    counted = await client(base_url, key).aio.models.count_tokens(
        model=model, contents="Hello there"
    )
    if model == "gemini-3-1-pro":
        assert counted.total_tokens == 4321
        assert fakes.gemini.paths == ["/v1beta/models/gemini-3.1-pro-preview:countTokens"]
        assert fakes.gemini.requests[0]["contents"][0]["parts"] == [{"text": "Hello there"}]
    else:  # the estimate: a quarter of what a generateContent call of it would hold
        sent = {"contents": [{"parts": [{"text": "Hello there"}], "role": "user"}]}
        assert counted.total_tokens == math.ceil(gemini.FORMAT.parse(sent).input_tokens / 4)
        assert all(not fake.requests for fake in fakes.all())
    balances = await books_balance(ctx, wallet)
    assert (balances.spent, balances.held) == (0, 0)


async def test_count_tokens_is_rate_limited_and_refused_in_geminis_envelope(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    await make_user(ctx, "bo")
    key = (await make_key(ctx, "bo", rate_limit=1))["key"]
    sdk = client(base_url, key).aio.models
    await sdk.count_tokens(model="gpt-5-4", contents="Hi")
    with pytest.raises(genai_errors.ClientError) as refused:
        await sdk.count_tokens(model="gpt-5-4", contents="Hi")
    assert (refused.value.code, refused.value.status) == (429, "RESOURCE_EXHAUSTED")


@pytest.mark.parametrize("model", ["gemini-embedding-001", "text-embedding-3-small"])
async def test_embed_content_is_answered_and_debited_exactly(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    fakes.openai.script.input_tokens = fakes.gemini.script.input_tokens = 77_000
    texts = ["What is your name?", "What is your favorite color?"]
    config = types.EmbedContentConfig(output_dimensionality=3, task_type="RETRIEVAL_DOCUMENT")
    reply = await client(base_url, key).aio.models.embed_content(
        model=model, contents=texts, config=config
    )
    assert [e.values for e in reply.embeddings or ()] == [vector(t, 3) for t in texts]
    if model == "gemini-embedding-001":
        path = fakes.gemini.paths[0]
        assert path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        sent = fakes.gemini.requests[0]["requests"]
        assert [r["model"] for r in sent] == ["models/gemini-embedding-001"] * 2
        assert sent[0]["taskType"] == "RETRIEVAL_DOCUMENT"
    else:
        assert fakes.openai.requests == [
            {
                "model": "text-embedding-3-small",
                "input": texts,
                "encoding_format": "float",
                "dimensions": 3,
            }
        ]
    balances = await books_balance(ctx, wallet)
    assert balances.spent == expected_cost(ctx, model, 77_000, 0) and balances.held == 0


@pytest.mark.parametrize("model", ["gemini-embedding-001", "text-embedding-3-small"])
async def test_embed_content_with_one_content(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, wallet = account
    fakes.openai.script.omit_usage = fakes.gemini.script.omit_usage = True  # the estimate
    body = {"content": {"parts": [{"text": "Hello there"}]}, "output_dimensionality": 2}
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(f"/v1/models/{model}:embedContent?key={key}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["embedding"]["values"] == vector("Hello there", 2)
    if model == "gemini-embedding-001":
        assert fakes.gemini.paths == ["/v1beta/models/gemini-embedding-001:embedContent"]
        assert fakes.gemini.requests[0] == {
            "content": {"parts": [{"text": "Hello there"}]},
            "outputDimensionality": 2,
        }
    estimated = math.ceil(len(b"Hello there") / 4)
    assert (await books_balance(ctx, wallet)).spent == expected_cost(ctx, model, estimated, 0)


async def test_models_are_listed_and_got_in_geminis_shape(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    await make_user(ctx, "cy")
    roster = [("gpt-5-4", None), ("gemini-3-1-pro", None), ("gemini-embedding-001", None)]
    key = (await make_key(ctx, "cy", models=roster))["key"]
    for version in ("v1beta", "v1"):
        sdk = client(base_url, key, version).aio.models
        pager = await sdk.list(config={"page_size": 2})
        listed = [model async for model in pager]
        names = [m.name for m in listed]
        assert names == ["models/gpt-5-4", "models/gemini-3-1-pro", "models/gemini-embedding-001"]
        assert listed[2].supported_actions == ["embedContent", "batchEmbedContents", "countTokens"]
        got = await sdk.get(model="gemini-3-1-pro")
        assert (got.input_token_limit, got.output_token_limit) == (1_048_576, 65_536)
        with pytest.raises(genai_errors.ClientError) as missing:
            await sdk.get(model="claude-sonnet-4-6")  # not on the key's roster
        assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    async with httpx.AsyncClient(base_url=base_url) as http:
        theirs = (await http.get(f"{fakes.gemini.url}/v1beta/models")).json()["models"][0]
        ours = (await http.get("/v1beta/models", headers={"x-goog-api-key": key})).json()
        openai_shape = await http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert set(ours) == {"models"}  # one page: no nextPageToken
    assert set(ours["models"][0]) <= set(theirs)  # nothing Google's listing lacks
    assert openai_shape.json()["object"] == "list"  # OpenAI's clients still get OpenAI's


async def test_keys_are_taken_from_google_headers_and_the_query_on_gemini_routes(
    fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    body = {"contents": [{"parts": [{"text": "Hi"}]}]}
    chat = {"model": "mock", "messages": [{"role": "user", "content": "Hi"}]}
    async with httpx.AsyncClient(base_url=base_url) as http:
        path = "/v1beta/models/mock:generateContent"
        assert (await http.post(f"{path}?key={key}", json=body)).status_code == 200
        assert (
            await http.post(path, json=body, headers={"x-goog-api-key": key})
        ).status_code == 200
        assert (
            await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        ).status_code == 200
        missing = await http.post(path, json=body)
        elsewhere = await http.post(f"/v1/chat/completions?key={key}", json=chat)
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert elsewhere.status_code == 401  # a key in the query only where Google's SDKs put it


@pytest.mark.parametrize(
    ("path", "body", "status", "canonical"),
    [
        ("/v1beta/models/nope:generateContent", {}, 404, "NOT_FOUND"),
        ("/v1beta/models/gemini-embedding-001:generateContent", {}, 400, "INVALID_ARGUMENT"),
        ("/v1beta/models/gpt-5-4:embedContent", {}, 400, "INVALID_ARGUMENT"),
        ("/v1beta/models/gpt-5-4:predict", {}, 404, "NOT_FOUND"),
        (
            "/v1beta/models/gpt-5-4:generateContent",
            {"contents": [{"parts": [{"text": "Hi"}]}], "generationConfig": {"temperature": "hot"}},
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1beta/models/gpt-5-4:generateContent",
            {"contents": [{"parts": [{"text": "Hi"}]}], "tools": [{"googleSearch": {}}]},
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            {"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]},
            400,
            "INVALID_ARGUMENT",
        ),
    ],
)
async def test_refusals_come_in_geminis_envelope_before_any_hold(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    path: str,
    body: dict[str, Any],
    status: int,
    canonical: str,
) -> None:
    key, wallet = account
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(path, json=body, headers={"x-goog-api-key": key})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (status, canonical), error
    assert isinstance(error["message"], str) and error["message"]
    assert all(not fake.requests for fake in fakes.all())
    assert (await books_balance(ctx, wallet)).held == 0


async def test_money_limits_and_upstream_errors_in_geminis_envelope(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    await make_user(ctx, "di")
    await top_up(ctx, "0.5", user="di")
    key = (await make_key(ctx, "di"))["key"]
    sdk = client(base_url, key).aio.models
    # A file by URI may be as long as the context window: 1,048,576 tokens at $2 is more
    # than the wallet holds, so the hold refuses it, where the same call without it passes.
    video = types.Part.from_uri(file_uri="https://example.com/files/abc", mime_type="video/mp4")
    with pytest.raises(genai_errors.APIError) as broke:
        await sdk.generate_content(model="gemini-3-1-pro", contents=["Describe", video])
    assert (broke.value.code, broke.value.status) == (402, "FAILED_PRECONDITION")
    assert fakes.gemini.requests == []
    fakes.gemini.script.status = 429
    with pytest.raises(genai_errors.ClientError) as limited:
        await sdk.generate_content(model="gemini-3-1-pro", contents="Describe")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert limited.value.message == "upstream says no"
    balances = await books_balance(ctx, await wallet_of(ctx, user="di"))
    assert (balances.spent, balances.held) == (0, 0)


async def test_the_fake_lists_models_as_google_does() -> None:
    """The fake's listing is the reference the shape test compares ours with."""
    async with fake_gemini.running() as fake, httpx.AsyncClient() as http:
        page = (await http.get(f"{fake.url}/v1beta/models?pageSize=1")).json()
        rest = (
            await http.get(f"{fake.url}/v1beta/models?pageToken={page['nextPageToken']}")
        ).json()
    assert [m["name"] for m in page["models"] + rest["models"]] == [
        m["name"] for m in fake_gemini.MODELS
    ]


async def test_a_stream_the_upstream_refuses_is_an_error_answer_and_costs_nothing(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    fakes.gemini.script.status = 500
    with pytest.raises(genai_errors.ServerError) as failed:
        stream = await client(base_url, key).aio.models.generate_content_stream(
            model="gemini-3-1-pro", contents="Hi"
        )
        async for _ in stream:
            pass
    assert (failed.value.code, failed.value.status) == (502, "UNAVAILABLE")
    balances = await books_balance(ctx, wallet)
    assert (balances.spent, balances.held) == (0, 0)


@pytest.mark.parametrize("model", ["gemini-3-1-pro", "gpt-5-4"])
async def test_snake_case_bodies_as_in_googles_rest_examples(
    fakes: Upstreams, base_url: str, account: tuple[str, int], model: str
) -> None:
    key, _ = account
    body = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"parts": [{"text": "Hi"}]}],
        "generation_config": {"max_output_tokens": 50, "stop_sequences": ["END"]},
    }
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(
            f"/v1beta/models/{model}:generateContent", json=body, headers={"x-goog-api-key": key}
        )
    assert answer.status_code == 200, answer.text
    if model == "gemini-3-1-pro":
        sent = fakes.gemini.requests[0]
        assert sent["generationConfig"] == {"maxOutputTokens": 50, "stopSequences": ["END"]}
        assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    else:
        sent = fakes.openai.requests[0]
        assert (sent["max_completion_tokens"], sent["stop"]) == (50, ["END"])
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


THINKING_USAGE = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 400,
    "candidatesTokenCount": 200,
    "thoughtsTokenCount": 300,
    "totalTokenCount": 1500,
}


def thinking_routes(fake: FakeUpstream) -> list[web.RouteDef]:
    """A Gemini that thinks and reads a cache: its usage has thoughts and cached tokens."""

    async def generate(request: web.Request) -> web.StreamResponse:
        await fake.record(request)
        parts = [{"text": "Mulling.", "thought": True}, {"text": "Done."}]
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
        answer = {"candidates": [candidate], "usageMetadata": THINKING_USAGE}
        if "stream" not in request.match_info["target"]:
            return web.json_response(answer)
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        await stream.write(b"data: " + orjson.dumps(answer) + b"\r\n\r\n")
        await stream.write_eof()
        return stream

    return [web.post("/v1beta/models/{target}", generate)]


@pytest.mark.parametrize("stream", [False, True])
async def test_thoughts_are_billed_as_output_and_cached_tokens_at_the_cache_price(
    ctx: Context, fakes: Upstreams, account: tuple[str, int], stream: bool
) -> None:
    key, wallet = account
    async with serve(thinking_routes) as thinking:
        env = {**fakes.env(), "GEMINI_BASE_URL": thinking.url}
        providers = Providers(ctx.catalog, ctx.settings, env=env)
        async with gateway(ctx, fakes, providers=providers) as base_url:
            sdk = client(base_url, key).aio.models
            if stream:
                chunks = await sdk.generate_content_stream(model="gemini-3-1-pro", contents="Hi")
                usage = [chunk.usage_metadata async for chunk in chunks][-1]
            else:
                reply = await sdk.generate_content(model="gemini-3-1-pro", contents="Hi")
                usage = reply.usage_metadata
    assert usage is not None and usage.thoughts_token_count == 300
    balances = await books_balance(ctx, wallet)
    assert balances.spent == expected_cost(ctx, "gemini-3-1-pro", 1000, 500, cached=400)
