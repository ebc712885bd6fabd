"""What a call costs: the exact charge for reported usage, line by line, and a safe upper
bound before it.

The charge: the tokens of each class at that class's price, in the long-context tier the
prompt's size picks, in the price period in force when the call started, plus per-call
fees (billing/pricebook.py). The lines are exact (fractions of a micro-dollar); their sum
is rounded up to a whole micro-dollar once per call, never line by line.

The bound is what a hold reserves, so it must never be below the real cost: a token is at
least one UTF-8 byte of text, so the bytes of the whole body bound its tokens; each
message and a tool list add a fixed overhead, each image a fixed maximum. Output is
bounded by `max_tokens`, which the gateway always sends upstream. Every prompt token is
held at the dearest input class (a cache write costs more than input), output at the
output price, both in the dearest tier the bound reaches; web searches at their fee, as
many as the request's search tools allow (`Reach`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from bytespike.billing import pricebook
from bytespike.billing.pricebook import Period, Rates
from bytespike.catalog import Model
from bytespike.money import MICROS_PER_USD, cost_micros, round_up
from bytespike.records import record
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


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


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
    # (container, depth, whether its text counts): an image's data is walked for depth
    # only. Strings, most of a body, are counted where they are met, never stacked; an
    # ASCII string's length is its UTF-8 length (and asking is O(1) in CPython).
    stack: list[tuple[Any, int, bool]] = [(body, 1, True)]
    while stack:
        value, depth, counts = stack.pop()
        if depth > MAX_DEPTH:
            raise TooDeep(f"the request nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            kind = value.get("type")
            image = counts and isinstance(kind, str) and kind in _IMAGE_TYPES
            inner = counts and not image
            tokens += IMAGE_TOKENS if image else 0
            items: Iterable[Any] = value.values()
            if counts:
                for key in value:
                    key = key if type(key) is str else str(key)
                    tokens += len(key) if key.isascii() else _utf8_length(key)
        else:
            items, inner = value, counts
        for item in items:
            if isinstance(item, str):
                if inner:
                    tokens += len(item) if item.isascii() else _utf8_length(item)
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1, inner))
            elif depth >= MAX_DEPTH:  # a scalar one level past the limit is too deep too
                raise TooDeep(f"the request nests deeper than {MAX_DEPTH} levels")
            elif inner:  # numbers, booleans, null: at most one token per character of JSON
                tokens += len(str(item))
    return tokens


@record
class Line:
    """One line of a receipt: `quantity` tokens (or calls, for a fee) at `unit_price` USD
    per million tokens (or per call), `amount` exact micro-dollars."""

    name: str  # a token class or a fee (pricebook.TOKEN_CLASSES, pricebook.FEES)
    quantity: int
    unit_price: Decimal
    amount: Decimal

    @property
    def per_call(self) -> bool:
        return self.name in pricebook.FEES


@record
class Receipt:
    """How a call's cost was made: the price period and tier, and a line per class."""

    period: str  # the price period's id
    tier: int  # the tier's threshold in prompt tokens (0: the base prices)
    lines: tuple[Line, ...]

    @property
    def exact(self) -> Decimal:
        """The lines' sum in micro-dollars, before rounding."""
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def cost(self) -> int:
        """The charge: the exact sum rounded up to a whole micro-dollar, once per call."""
        return round_up(self.exact)


def token_counts(usage: Usage) -> dict[str, int]:
    """The tokens of each class: every prompt token in exactly one of the first four."""
    one_hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    return {
        "input": usage.uncached_tokens,
        "cache_read": usage.cached_tokens,
        "cache_write": usage.cache_write_tokens - one_hour,
        "cache_write_1h": one_hour,
        "output": usage.output_tokens,
    }


def fee_counts(usage: Usage) -> dict[str, int]:
    return {"web_search": usage.web_search_requests}


def receipt(model: Model, usage: Usage, started: datetime | None = None) -> Receipt:
    """The receipt of a call that started at `started` (None: priced by the book's first
    period, for books of one period) with this reported usage. Input and output always
    have a line; other classes and fees when the call used them."""
    period = _period(model, started)
    tier = period.tier(usage.prompt_tokens)
    lines = []
    for name, tokens in token_counts(usage).items():
        if tokens or name in ("input", "output"):
            price = tier.rates.of(name)
            lines.append(Line(name, tokens, price, cost_micros(tokens, price)))
    for name, calls in fee_counts(usage).items():
        if calls:
            price = period.fee(name)
            lines.append(Line(name, calls, price, calls * price * MICROS_PER_USD))
    return Receipt(period.id, tier.above, tuple(lines))


def charge(model: Model, usage: Usage, started: datetime | None = None) -> int:
    """What a call with this reported usage is charged."""
    return receipt(model, usage, started).cost


def cost(model: Model, input_tokens: int, output_tokens: int) -> int:
    """Input and output tokens at the first period's base prices (every prompt token
    uncached), rounded up once."""
    return charge(model, Usage(input_tokens, output_tokens))


def input_cost(model: Model, tokens: int) -> int:
    return cost(model, tokens, 0)


@record
class Reach:
    """What a request may be billed for beyond its tokens' bounds: server-side web searches,
    and whether it may write a prompt cache for an hour (an opt-in: Anthropic's
    `cache_control` with `ttl: "1h"`). Read from the body by `reach`."""

    searches: int = 0
    cache_1h: bool = False


NOTHING = Reach()


def reach(body: dict[str, Any]) -> Reach:
    return Reach(searches=search_bound(body), cache_1h=_asks_hour_cache(body))


def hold_amount(
    model: Model,
    input_tokens: int,
    output_tokens: int,
    started: datetime | None = None,
    *,
    reach: Reach = NOTHING,
) -> int:
    """The hold for a call: its cost if every bound is reached (never below one micro): in
    each tier `input_tokens` may reach, the prompt at the dearest class it may be billed in
    and the output at its price, plus the web searches it may run; the dearest of those."""
    period = _period(model, started)
    most = max(
        _bound(tier.rates, input_tokens, output_tokens, reach)
        for tier in period.reachable(input_tokens)
    )
    return max(1, round_up(most + _fees(period, reach)))


def affordable_output(
    model: Model,
    budget: int,
    input_tokens: int,
    started: datetime | None = None,
    *,
    reach: Reach = NOTHING,
) -> int:
    """How many output tokens `budget` micros pay for after the input bound, in every tier
    the input bound may reach (`hold_amount` of the answer is within `budget`)."""
    period = _period(model, started)
    fits = []
    for tier in period.reachable(input_tokens):
        left = budget - _bound(tier.rates, input_tokens, 0, reach) - _fees(period, reach)
        if left <= 0:
            return 0
        price = tier.rates.output
        # Decimal division, floored by int(); free output: as much as the model writes.
        fits.append(int(left / price) if price else model.max_output_tokens)
    return min(fits)


def search_bound(body: dict[str, Any]) -> int:
    """The most web searches a request's server-side search tools may run: each tool's own
    limit (Anthropic's `max_uses`), else SEARCHES_PER_TOOL. Tools are recognised by their
    type or key in any client format: Anthropic `web_search_*`, OpenAI `web_search*`,
    Gemini `googleSearch` / `google_search`."""
    bound = 0
    for tool in _dicts(body.get("tools")):
        kind = tool.get("type")
        searching = isinstance(kind, str) and kind.startswith("web_search")
        if searching or any(key in tool for key in _GEMINI_SEARCH):
            limit = tool.get("max_uses")
            bound += limit if isinstance(limit, int) and limit > 0 else SEARCHES_PER_TOOL
    return bound


def _asks_hour_cache(body: dict[str, Any]) -> bool:
    """Whether any `cache_control` where Anthropic reads one (the request, its system
    blocks, tools and content blocks) asks for a 1-hour lifetime."""
    places = [body, *_dicts(body.get("system")), *_dicts(body.get("tools"))]
    for message in _dicts(body.get("messages")):
        places.extend(_dicts(message.get("content")))
    for place in places:
        control = place.get("cache_control")
        if isinstance(control, dict) and control.get("ttl") == "1h":
            return True
    return False


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# A search tool without a limit of its own is held for this many searches. A bound, not a
# limit: a call that runs more is charged all of them at settlement.
SEARCHES_PER_TOOL = 10
_GEMINI_SEARCH = (
    "googleSearch",
    "google_search",
    "googleSearchRetrieval",
    "google_search_retrieval",
)


def _fees(period: Period, reach: Reach) -> Decimal:
    return reach.searches * period.fee("web_search") * MICROS_PER_USD


def _bound(rates: Rates, input_tokens: int, output_tokens: int, reach: Reach) -> Decimal:
    """Every prompt token at the dearest class it may be billed in: input, a cache read, a
    cache write (any provider may write one unasked), a 1-hour write if the request asks."""
    classes = [rates.input, rates.cache_read, rates.cache_write]
    if reach.cache_1h:
        classes.append(rates.cache_write_1h)
    return input_tokens * max(classes) + output_tokens * rates.output


def _period(model: Model, started: datetime | None) -> Period:
    book = model.prices
    return book.periods[0] if started is None else book.at(started)
