"""What a call costs: the exact charge for reported usage, and a safe upper bound before it.

The bound is what a hold reserves, so it must never be below the real cost: a token is at
least one UTF-8 byte of text, so the bytes of the whole body bound its tokens; each
message and a tool list add a fixed overhead, each image a fixed maximum. Output is
bounded by `max_tokens`, which the gateway always sends upstream.
"""

from __future__ import annotations

from typing import Any

from bytespike.catalog import Model
from bytespike.money import cost_micros, round_up
from bytespike.upstream.base import Usage

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators, per message
REQUEST_OVERHEAD_TOKENS = 16  # the reply's priming and the template around it
# Tools bring their own system prompt: Anthropic documents 346 tokens for it; the rest is
# room for any provider's template around the declarations.
TOOLS_OVERHEAD_TOKENS = 1_000
IMAGE_TOKENS = 6_400  # above what OpenAI, Anthropic and Gemini charge for one image
_IMAGE_TYPES = frozenset({"image_url", "image", "input_image"})
# Deeper bodies are refused: no real request nests this far, and the translations and the
# JSON encoder (orjson stops at 254 levels) must never meet one that does.
MAX_DEPTH = 128


class TooDeep(ValueError):
    """The body nests deeper than MAX_DEPTH."""


def input_bound(body: dict[str, Any]) -> int:
    """Upper bound of the prompt's tokens for a request body of any client API: every byte of
    it counts (a token is at least one UTF-8 byte of what the model reads, and the model
    reads no more than what the client sent), keys and numbers included, whatever field a
    provider may bill; an image counts as IMAGE_TOKENS instead of its encoded bytes.
    Linear in the body, with no recursion; raises TooDeep past MAX_DEPTH."""
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 0
    tokens = REQUEST_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS * count
    if body.get("tools") or body.get("functions"):
        tokens += TOOLS_OVERHEAD_TOKENS
    # (value, depth, whether its text counts): an image's data is walked for depth only.
    stack: list[tuple[Any, int, bool]] = [(body, 1, True)]
    while stack:
        value, depth, counts = stack.pop()
        if isinstance(value, str):
            tokens += len(value.encode("utf-8", "surrogatepass")) if counts else 0
            continue
        if depth > MAX_DEPTH:
            raise TooDeep(f"the request nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            kind = value.get("type")
            image = counts and isinstance(kind, str) and kind in _IMAGE_TYPES
            tokens += IMAGE_TOKENS if image else 0
            for key, item in value.items():
                tokens += len(str(key).encode("utf-8", "surrogatepass")) if counts else 0
                stack.append((item, depth + 1, counts and not image))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, counts) for item in value)
        elif counts:  # numbers, booleans, null: at most one token per character of their JSON
            tokens += len(str(value))
    return tokens


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
