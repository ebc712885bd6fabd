"""POST /v1/embeddings through bytespike with the official openai SDK: OpenAI, Gemini and
OpenAI-compatible embedding models, float and base64 vectors, `dimensions`, token arrays,
the exact debit (reported usage, or the documented estimate), and the refusals."""

from __future__ import annotations

import base64
import dataclasses
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from bytespike.billing import pricebook
from bytespike.catalog import Catalog, Model
from bytespike.context import Context
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost, gateway
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes.openai import EMBEDDING_SIZE, vector
from tests.openai_schema import assert_valid

EMBEDDING_MODELS = ["text-embedding-3-small", "gemini-embedding-001"]
TEXTS = ["The quick brown fox", "jumped over the lazy dog"]


def sdk(base_url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)


def floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize("model", EMBEDDING_MODELS)
@pytest.mark.parametrize("encoding", ["float", "base64", None])
async def test_embeddings_are_answered_and_debited_exactly(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    model: str,
    encoding: str | None,
) -> None:
    key, wallet = account
    fakes.openai.script.input_tokens = fakes.gemini.script.input_tokens = 123_456
    extra: dict[str, Any] = {} if encoding is None else {"encoding_format": encoding}
    async with sdk(base_url, key) as client:
        raw = await client.embeddings.with_raw_response.create(
            model=model, input=TEXTS, dimensions=4, **extra
        )
    body = raw.http_response.json()
    for item in body["data"]:  # the reference describes float vectors only
        if isinstance(item["embedding"], str):
            item["embedding"] = floats(item["embedding"])
    assert_valid("CreateEmbeddingResponse", body)
    reply = raw.parse()
    assert reply.model == model and reply.usage.prompt_tokens == 123_456
    for item, text in zip(reply.data, TEXTS, strict=True):
        # The SDK asks for base64 when not told, and decodes it: floats either way.
        want = vector(text, 4)
        assert (floats(item.embedding) if encoding == "base64" else item.embedding) == want
    balances = await books_balance(ctx, wallet)
    assert balances.spent == expected_cost(ctx, model, 123_456, 0)
    assert balances.held == 0


async def test_a_gemini_embedding_goes_up_as_batch_embed_contents(
    fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    async with sdk(base_url, key) as client:
        await client.embeddings.create(model="gemini-embedding-001", input="Hi", dimensions=3)
    assert fakes.gemini.paths == ["/v1beta/models/gemini-embedding-001:batchEmbedContents"]
    assert fakes.gemini.requests == [
        {
            "requests": [
                {
                    "model": "models/gemini-embedding-001",
                    "content": {"parts": [{"text": "Hi"}]},
                    "outputDimensionality": 3,
                }
            ]
        }
    ]
    assert fakes.gemini.headers[0]["x-goog-api-key"] == "upstream-gemini"


async def test_without_reported_usage_a_text_is_billed_a_token_per_four_bytes(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    fakes.gemini.script.omit_usage = True
    async with sdk(base_url, key) as client:
        reply = await client.embeddings.create(model="gemini-embedding-001", input=TEXTS)
    estimated = sum(math.ceil(len(text.encode()) / 4) for text in TEXTS)
    assert reply.usage.prompt_tokens == estimated == 11
    assert len(reply.data[0].embedding) == EMBEDDING_SIZE
    balances = await books_balance(ctx, wallet)
    assert balances.spent == expected_cost(ctx, "gemini-embedding-001", estimated, 0)


async def test_token_arrays_reach_openai_but_gemini_refuses_them_before_any_hold(
    ctx: Context, fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, wallet = account
    tokens = [[1212, 318, 257], [1332, 13]]
    async with sdk(base_url, key) as client:
        reply = await client.embeddings.create(
            model="text-embedding-3-small", input=tokens, encoding_format="float"
        )
        assert [d.embedding for d in reply.data] == [vector(t, EMBEDDING_SIZE) for t in tokens]
        assert fakes.openai.requests[-1]["input"] == tokens
        with pytest.raises(openai.BadRequestError) as refused:
            await client.embeddings.create(model="gemini-embedding-001", input=tokens)
    error = refused.value.response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "input")
    assert fakes.gemini.requests == []
    balances = await books_balance(ctx, wallet)
    assert balances.held == 0
    assert balances.spent == expected_cost(ctx, "text-embedding-3-small", 12, 0)


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("/v1/embeddings", {"model": "gpt-5-4", "input": "Hi"}, "model"),
        ("/v1/embeddings", {"model": "mock", "input": "Hi"}, "model"),
        (
            "/v1/chat/completions",
            {"model": "text-embedding-3-small", "messages": [{"role": "user", "content": "Hi"}]},
            "model",
        ),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ""}, "input"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": []}, "input"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [[]]}, "input[0]"),
        (
            "/v1/embeddings",
            {"model": "text-embedding-3-small", "input": "Hi", "dimensions": 0},
            "dimensions",
        ),
        (
            "/v1/embeddings",
            {"model": "text-embedding-3-small", "input": "Hi", "encoding_format": "hex"},
            "encoding_format",
        ),
    ],
)
async def test_a_request_of_the_wrong_kind_or_shape_is_a_400_in_openais_envelope(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    route: str,
    body: dict[str, Any],
    param: str,
) -> None:
    key, wallet = account
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(route, json=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 400, answer.text
    assert_valid("ErrorResponse", answer.json())
    error = answer.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error
    assert all(not fake.requests for fake in fakes.all())
    assert (await books_balance(ctx, wallet)).held == 0


async def test_an_embedding_model_on_the_messages_route_is_refused_in_anthropics_envelope(
    fakes: Upstreams, base_url: str, account: tuple[str, int]
) -> None:
    key, _ = account
    body = {
        "model": "gemini-embedding-001",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post("/v1/messages", json=body, headers={"x-api-key": key})
    assert answer.status_code == 400
    assert answer.json()["type"] == "error"
    assert "embedding model" in answer.json()["error"]["message"]


async def test_the_hold_bounds_every_input_byte(
    ctx: Context, fakes: Upstreams, base_url: str
) -> None:
    """A wallet that cannot pay for what the texts' bytes may cost is refused (402) before
    anything reaches the upstream; one that can is served, and billed the usage reported."""
    await make_user(ctx, "bo")
    key = (await make_key(ctx, "bo"))["key"]
    texts = ["x" * 5_000] * 10
    body = {"model": "gemini-embedding-001", "input": texts}
    async with httpx.AsyncClient(base_url=base_url) as http:
        await top_up(ctx, "0.000001", user="bo")
        refused = await http.post(
            "/v1/embeddings", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert refused.status_code == 402, refused.text
        assert refused.json()["error"]["code"] == "insufficient_balance"
        assert fakes.gemini.requests == []
        await top_up(ctx, "0.01", user="bo")
        served = await http.post(
            "/v1/embeddings", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    assert served.status_code == 200, served.text
    balances = await books_balance(ctx, await wallet_of(ctx, user="bo"))
    assert balances.spent == expected_cost(ctx, "gemini-embedding-001", 12, 0)


@pytest.fixture
async def compatible(ctx: Context, fakes: Upstreams) -> AsyncIterator[tuple[Context, str]]:
    """A catalog with an OpenAI-compatible embedding model served by the OpenAI fake."""
    local = Model(
        id="local-embed",
        provider="openai-compatible",
        upstream_model="nomic-embed-text",
        prices=pricebook.flat("0.05", "0"),
        context_tokens=8192,
        max_output_tokens=1,
        base_url=fakes.openai.url,
        kind="embedding",
    )
    extended = dataclasses.replace(ctx, catalog=Catalog([*ctx.catalog.models, local]))
    async with gateway(extended, fakes) as url:
        yield extended, url


async def test_an_openai_compatible_embedding_model_is_served_and_debited(
    fakes: Upstreams, compatible: tuple[Context, str]
) -> None:
    ctx, base_url = compatible
    await make_user(ctx, "cy")
    await top_up(ctx, "1", user="cy")
    key = (await make_key(ctx, "cy"))["key"]
    fakes.openai.script.input_tokens = 40_000
    async with sdk(base_url, key) as client:
        reply = await client.embeddings.create(model="local-embed", input="Hi", dimensions=2)
    assert reply.data[0].embedding == vector("Hi", 2)
    assert fakes.openai.requests[-1]["model"] == "nomic-embed-text"
    assert fakes.openai.headers[-1].get("Authorization") is None  # no key configured for it
    balances = await books_balance(ctx, await wallet_of(ctx, user="cy"))
    assert balances.spent == expected_cost(ctx, "local-embed", 40_000, 0) == 2_000
