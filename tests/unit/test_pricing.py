"""Pricing: exact charges, and a hold bound that never falls short of what it must cover."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from bytespike.billing import pricing
from bytespike.catalog import Model
from bytespike.upstream.base import Usage

SONNET = Model(
    id="claude-sonnet-4-6",
    provider="anthropic",
    upstream_model="claude-sonnet-4-6",
    input_usd_per_mtok=Decimal("3.00"),
    output_usd_per_mtok=Decimal("15.00"),
    context_tokens=200_000,
    max_output_tokens=64_000,
)
ODD = Model(
    id="odd",
    provider="openai",
    upstream_model="odd",
    input_usd_per_mtok=Decimal("0.15"),
    output_usd_per_mtok=Decimal("0.6"),
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
                assert left < model.output_usd_per_mtok + 2
