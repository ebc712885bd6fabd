"""Pricing: exact charges, and a hold bound that never falls short of what it must cover."""

from __future__ import annotations

import random
from decimal import Decimal

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
