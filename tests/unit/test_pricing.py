"""Pricing: exact charges, and a hold bound that never falls short of what it must cover."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

import pytest

from bytespike import catalog
from bytespike.billing import pricebook, pricing
from bytespike.catalog import Model
from bytespike.translate import responses_response
from bytespike.translate.anthropic_response import anthropic_usage
from bytespike.translate.anthropic_stream import fold_stream_usage
from bytespike.upstream import embeddings, gemini_response
from bytespike.upstream.base import Usage, openai_usage, usage_from_anthropic, usage_from_openai
from bytespike.upstream.openai_responses import usage_from_responses
from tests.pricing_shapes import SHAPES, Shape

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

SONNET = Model(
    id="claude-sonnet-4-6",
    provider="anthropic",
    upstream_model="claude-sonnet-4-6",
    prices=pricebook.flat("3.00", "15.00"),
    context_tokens=200_000,
    max_output_tokens=64_000,
)
ODD = Model(
    id="odd",
    provider="openai",
    upstream_model="odd",
    prices=pricebook.flat("0.15", "0.6"),
    context_tokens=128_000,
    max_output_tokens=16_384,
)


def test_the_charge_is_exact_and_rounds_up_once_per_call() -> None:
    assert pricing.charge(SONNET, Usage(1234, 567)) == 1234 * 3 + 567 * 15
    # 0.15 + 0.6 = 0.75 micro: one micro, not a fraction rounded per token type.
    assert pricing.charge(ODD, Usage(1, 1)) == 1
    assert pricing.charge(ODD, Usage(10, 10)) == 8  # 7.5 rounds up
    assert pricing.charge(ODD, Usage(0, 0)) == 0


def test_the_input_bound_counts_bytes_messages_and_images() -> None:
    text = {"messages": [{"role": "user", "content": "héllo"}]}  # 6 UTF-8 bytes
    with_image = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64," + "A" * 900},
                    },
                ],
            }
        ]
    }
    plain = pricing.input_bound(text)
    assert plain >= len("héllo".encode()) + pricing.MESSAGE_OVERHEAD_TOKENS
    # The image counts its fixed maximum, not its (base64) size.
    assert pricing.IMAGE_TOKENS <= pricing.input_bound(with_image) < pricing.IMAGE_TOKENS + 200
    system = {**text, "system": "x" * 1000}
    assert pricing.input_bound(system) >= plain + 1000


def test_the_input_bound_covers_every_field_whatever_its_name() -> None:
    """Fields the gateway never reads (deprecated `functions`, `prediction`, Anthropic's
    `mcp_servers`, whatever a later API adds) are billed by providers all the same."""
    plain = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    base = pricing.input_bound(plain)
    for field, value in (
        ("functions", [{"name": "f", "parameters": {"description": "x" * 200_000}}]),
        ("prediction", {"type": "content", "content": "x" * 200_000}),
        ("mcp_servers", [{"type": "url", "url": "https://" + "x" * 200_000}]),
        ("some_future_field", {"deep": [["x" * 200_000]]}),
    ):
        assert pricing.input_bound({**plain, field: value}) >= base + 200_000, field
    # Numbers count their digits: a token never spans less than one character.
    assert pricing.input_bound({**plain, "seed": 10**40}) >= base + 40


def test_a_tool_list_adds_the_providers_tool_prompt() -> None:
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    tools = {**plain, "tools": [{"name": "f", "input_schema": {}}]}
    assert pricing.input_bound(tools) >= pricing.input_bound(plain) + 346  # Anthropic's


def test_a_body_nested_past_the_limit_is_refused_without_recursion() -> None:
    value: object = "x"
    for _ in range(pricing.MAX_DEPTH + 1):
        value = {"a": [value]}
    with pytest.raises(pricing.TooDeep):
        pricing.input_bound({"messages": [value]})
    shallow: object = "x"
    for _ in range(pricing.MAX_DEPTH // 2 - 2):
        shallow = [shallow]
    assert pricing.input_bound({"messages": shallow}) > 0


def test_the_affordable_output_always_fits_the_budget() -> None:
    rng = random.Random(7)  # noqa: S311 - a property test, not cryptography
    for model in (SONNET, ODD):
        for _ in range(2000):
            budget = rng.randint(0, 50_000)
            input_tokens = rng.randint(0, 3000)
            output = pricing.affordable_output(model, budget, input_tokens)
            if output:
                assert pricing.hold_amount(model, input_tokens, output) <= budget
                # ... and wastes less than a token's price (plus the two roundings up).
                left = budget - pricing.hold_amount(model, input_tokens, output)
                assert left < model.prices.periods[0].base.output + 2


# --- every token class, as each provider reports it ---------------------------------------


def provider_usage(shape: Shape) -> Usage:
    """The Usage bytespike reads from the provider's own report (upstream/ adapters)."""
    reader = {
        "chat": usage_from_openai,
        "anthropic": usage_from_anthropic,
        "responses": lambda u: usage_from_responses(u, SEARCH_ITEMS[: shape.searches]),
        "gemini": lambda u: gemini_response.usage_of(u, shape.searches),
        "embeddings": lambda u: embeddings.usage_of({"usage": u}),
    }[shape.wire]
    usage = reader(shape.usage)
    assert usage is not None
    return usage


SEARCH_ITEMS = [{"type": "web_search_call", "status": "completed"}] * 5


@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_the_charge_is_the_providers_published_formula_to_the_micro_dollar(shape: Shape) -> None:
    model = catalog.load().get(shape.model)
    assert model is not None
    usage = provider_usage(shape)

    receipt = pricing.receipt(model, usage, NOW)

    assert receipt.exact == shape.expected  # exact, before the one rounding
    assert receipt.cost == pricing.charge(model, usage, NOW) == shape.charge
    # The lines are the classes: every prompt token in one, reasoning never added twice.
    counts = {line.name: line.quantity for line in receipt.lines if not line.per_call}
    assert sum(counts.values()) == usage.input_tokens + usage.output_tokens


@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_every_class_survives_the_openai_shape_translated_providers_speak(shape: Shape) -> None:
    """Anthropic and Gemini answer chat, Messages, Responses and Gemini clients through the
    OpenAI shape; none of the classes may be lost on the way (nor on the way back out)."""
    usage = provider_usage(shape)
    assert usage_from_openai(openai_usage(usage)) == usage
    responses_shape = responses_response.usage(openai_usage(usage))
    assert responses_shape is not None
    searches = SEARCH_ITEMS[: usage.web_search_requests]
    assert usage_from_responses(responses_shape, searches) == usage
    assert usage_from_anthropic(anthropic_usage(usage)) == dataclasses.replace(
        usage, reasoning_tokens=0, tool_prompt_tokens=0
    )  # Anthropic's shape has no reasoning count; tool prompts are its input


def test_an_anthropic_stream_keeps_the_hour_long_writes_its_delta_restates() -> None:
    start = {
        "message": {
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 3000,
                "cache_read_input_tokens": 0,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 1000,
                    "ephemeral_1h_input_tokens": 2000,
                },
                "output_tokens": 1,
            }
        }
    }
    delta = {
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 0,
            "output_tokens": 50,
            "server_tool_use": {"web_search_requests": 1},
        }
    }
    usage = fold_stream_usage("message_start", start, None)
    usage = fold_stream_usage("message_delta", delta, usage)
    assert usage == Usage(
        3010, 50, cache_write_tokens=3000, cache_write_1h_tokens=2000, web_search_requests=1
    )


def test_the_hold_covers_the_dearest_tier_and_class_the_request_may_reach() -> None:
    shipped = catalog.load()
    sonnet, gpt = shipped.get("claude-sonnet-4-6"), shipped.get("gpt-5-4")
    assert sonnet is not None and gpt is not None
    # A 5-minute write is the dearest class a plain request may be billed in...
    assert pricing.hold_amount(sonnet, 1000, 100, NOW) == 1000 * 3.75 + 100 * 15
    # ... a 1-hour one only if the request asks for it.
    hour = {"messages": [{"role": "user", "content": [{"type": "text", "text": "x",
            "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]}  # fmt: skip
    reach = pricing.reach(hour)
    assert reach.cache_1h
    assert pricing.hold_amount(sonnet, 1000, 100, NOW, reach=reach) == 1000 * 6 + 100 * 15
    # Web searches at their fee, as many as the tool allows (else SEARCHES_PER_TOOL).
    tools = {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]}
    searching = pricing.reach(tools)
    assert searching.searches == 3
    assert pricing.hold_amount(sonnet, 1000, 100, NOW, reach=searching) == 3750 + 1500 + 30_000
    assert pricing.reach({"tools": [{"googleSearch": {}}]}).searches == pricing.SEARCHES_PER_TOOL
    # Above the threshold, the long-context prices of the whole request.
    assert pricing.hold_amount(gpt, 272_000, 10, NOW) == 272_000 * 2.5 + 10 * 15
    assert pricing.hold_amount(gpt, 272_001, 10, NOW) == 272_001 * 5 + 10 * 22.5
    # Every usage within the bounds costs at most the hold.
    for shape in SHAPES:
        model = shipped.get(shape.model)
        assert model is not None
        usage = provider_usage(shape)
        reach = pricing.Reach(searches=usage.web_search_requests, cache_1h=True)
        bound = pricing.hold_amount(
            model, usage.input_tokens, usage.output_tokens, NOW, reach=reach
        )
        assert pricing.charge(model, usage, NOW) <= bound, shape.id


def test_a_call_is_priced_by_the_period_in_force_when_it_started() -> None:
    book = pricebook.parse(
        {
            "prices": [
                {"input_usd_per_mtok": "1", "output_usd_per_mtok": "2"},
                {
                    "effective_from": datetime(2026, 4, 1, tzinfo=UTC),
                    "id": "april",
                    "input_usd_per_mtok": "3",
                    "output_usd_per_mtok": "4",
                },
            ]
        },
        "m",
    )
    model = dataclasses.replace(SONNET, prices=book)
    before = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    assert pricing.receipt(model, Usage(10, 10), before).period == "m@initial"
    assert pricing.charge(model, Usage(10, 10), before) == 30
    after = datetime(2026, 4, 1, tzinfo=UTC)
    assert pricing.receipt(model, Usage(10, 10), after).period == "april"
    assert pricing.charge(model, Usage(10, 10), after) == 70
