"""What a call costs: the exact charge for reported usage, and a safe upper bound before it.

The bound is what a hold reserves, so it must never be below the real cost: a token is at
least one UTF-8 byte of text, so the text's bytes bound its tokens; each message adds a
fixed overhead, each image a fixed maximum. Output is bounded by `max_tokens`, which the
gateway always sends upstream.
"""

from __future__ import annotations

from typing import Any

from bytespike.catalog import Model
from bytespike.money import cost_micros, round_up
from bytespike.upstream.base import Usage

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators, per message
REQUEST_OVERHEAD_TOKENS = 16  # the reply's priming and the template around it
IMAGE_TOKENS = 6_400  # above what OpenAI, Anthropic and Gemini charge for one image
_IMAGE_TYPES = frozenset({"image_url", "image", "input_image", "inlineData", "fileData"})


def input_bound(body: dict[str, Any]) -> int:
    """Upper bound of the prompt's tokens, for a Chat Completions or a Messages request."""
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 0
    tokens = REQUEST_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS * count
    for field in ("messages", "system", "tools", "tool_choice", "response_format"):
        if field in body:
            tokens += _bound(body[field])
    return tokens


def _bound(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, list):
        return sum(_bound(item) for item in value)
    if isinstance(value, dict):
        if value.get("type") in _IMAGE_TYPES:
            return IMAGE_TOKENS
        # Keys count too: tool schemas are sent to the model as text.
        return sum(len(str(k)) + _bound(v) for k, v in value.items())
    return 4 if value is not None else 0  # numbers and booleans inside tool schemas


def input_cost(model: Model, tokens: int) -> int:
    return round_up(cost_micros(tokens, model.input_usd_per_mtok))


def cost(model: Model, input_tokens: int, output_tokens: int) -> int:
    """Exactly input tokens at the input price plus output tokens at the output price,
    rounded up to a whole micro once per call."""
    exact = cost_micros(input_tokens, model.input_usd_per_mtok) + cost_micros(
        output_tokens, model.output_usd_per_mtok
    )
    return round_up(exact)


def charge(model: Model, usage: Usage) -> int:
    """What a call with this reported usage is charged."""
    return cost(model, usage.input_tokens, usage.output_tokens)


def affordable_output(model: Model, budget: int, input_tokens: int) -> int:
    """How many output tokens `budget` micros pay for after the input bound."""
    left = budget - input_cost(model, input_tokens)
    if left <= 0:
        return 0
    if model.output_usd_per_mtok == 0:
        return model.max_output_tokens
    return int(left / model.output_usd_per_mtok)  # Decimal division, floored by int()


def hold_amount(model: Model, input_tokens: int, output_tokens: int) -> int:
    """The hold for a call: its cost if every bound is reached (never below one micro), by
    the same formula as the charge, so the hold can never be below it."""
    return max(1, cost(model, input_tokens, output_tokens))
