"""Every token class priced as the provider prices it, through the official SDKs: each
recorded usage shape (tests/pricing_shapes.py) reported by the fake upstream, answered in
every client format that reaches its model (natively and translated), streamed and not,
is charged exactly the provider's published formula, in the ledger and on the call's
receipt."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai

from bytespike.context import Context
from bytespike.money import parse_usd
from tests.e2e.gateway_support import Upstreams, books_balance
from tests.pricing_shapes import SHAPES, Shape

# The Gemini SDK's async client subclasses aiohttp's ClientSession, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

# How each client format calls a model, streamed or not; each returns once the answer
# (the whole stream) has been read.
Client = Callable[[str, str, str, bool], Awaitable[None]]


async def chat(base_url: str, key: str, model: str, stream: bool) -> None:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) as sdk:
        messages: Any = [{"role": "user", "content": "Hi"}]
        if not stream:
            await sdk.chat.completions.create(model=model, messages=messages)
            return
        chunks = await sdk.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for _ in chunks:
            pass


async def messages(base_url: str, key: str, model: str, stream: bool) -> None:
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key=key, max_retries=0) as sdk:
        asked: Any = [{"role": "user", "content": "Hi"}]
        if not stream:
            await sdk.messages.create(model=model, max_tokens=2000, messages=asked)
            return
        events = await sdk.messages.create(
            model=model, max_tokens=2000, messages=asked, stream=True
        )
        async for _ in events:
            pass


async def generate(base_url: str, key: str, model: str, stream: bool) -> None:
    sdk = genai.Client(api_key=key, http_options={"base_url": base_url}).aio.models
    if not stream:
        await sdk.generate_content(model=model, contents="Hi")
        return
    async for _ in await sdk.generate_content_stream(model=model, contents="Hi"):
        pass


async def responses(base_url: str, key: str, model: str, stream: bool) -> None:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) as sdk:
        if not stream:
            await sdk.responses.create(model=model, input="Hi")
            return
        async for _ in await sdk.responses.create(model=model, input="Hi", stream=True):
            pass


async def embed(base_url: str, key: str, model: str, stream: bool) -> None:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) as sdk:
        await sdk.embeddings.create(model=model, input=["Hi", "there"])


# The client formats reaching each wire's model: the native one first. A Responses client
# reaches Anthropic and Gemini models through the chat shape, as Messages and Gemini
# clients reach OpenAI's.
CLIENTS: dict[str, list[Client]] = {
    "chat": [chat, messages, generate],
    "anthropic": [messages, chat, generate, responses],
    "gemini": [generate, chat, messages, responses],
    "responses": [responses],
    "embeddings": [embed],
}
# A shape at a tier's threshold tests the tier's choice, not a translation: native only.
CASES = [
    pytest.param(shape, client, stream, id=f"{shape.id}-{client.__name__}-{kind}")
    for shape in SHAPES
    for client in CLIENTS[shape.wire][: 1 if "threshold" in shape.id else None]
    for stream, kind in ((False, "whole"), (True, "stream"))
    if not (stream and shape.wire == "embeddings")
]


def report(fakes: Upstreams, shape: Shape) -> None:
    """The upstream of the shape's model reports its usage as recorded."""
    if shape.wire == "embeddings":  # the fakes report the script's input tokens
        for fake in (fakes.openai, fakes.gemini):
            fake.script.input_tokens = shape.usage["prompt_tokens"]
        return
    fake = {"chat": fakes.openai, "responses": fakes.openai, "anthropic": fakes.anthropic}.get(
        shape.wire, fakes.gemini
    )
    fake.script.usage = shape.usage
    fake.script.searches = shape.searches
    if shape.wire == "anthropic":
        fake.script.output_tokens = shape.usage["output_tokens"]


async def settled(ctx: Context, wallet: int) -> int:
    """What the wallet spent once its call settled (a stream settles as it closes: poll,
    with a deadline, until nothing is held)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        balances = await books_balance(ctx, wallet)
        if balances.held == 0 or asyncio.get_running_loop().time() > deadline:
            assert balances.held == 0, balances
            return balances.spent
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("shape", "client", "stream"), CASES)
async def test_each_class_is_charged_the_providers_published_price(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    shape: Shape,
    client: Client,
    stream: bool,
) -> None:
    key, wallet = account
    report(fakes, shape)

    await client(base_url, key, shape.model, stream)

    assert await settled(ctx, wallet) == shape.charge
    async with httpx.AsyncClient(base_url=base_url) as http:
        auth = {"Authorization": f"Bearer {key}"}
        listed = (await http.get("/api/v1/me/usage", headers=auth)).json()["data"]
        receipt = (await http.get(f"/api/v1/me/usage/{listed[0]['id']}", headers=auth)).json()
    lines = receipt["lines"]
    assert sum(parse_usd_exact(line["amount_usd"]) for line in lines) == shape.expected
    assert parse_usd(receipt["charged_usd"]) == parse_usd(receipt["cost_usd"]) == shape.charge


def parse_usd_exact(text: str) -> Decimal:
    """A line's exact amount in micro-dollars (it may hold fractions of one)."""
    return Decimal(text) * 1_000_000
