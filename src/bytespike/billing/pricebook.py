"""The price book: what every token class and server-side tool call of a model costs, in
price periods that take effect at set times and long-context tiers within them.

Read once from the catalog file's price fields (docs/pricing.md has the schema). Prices
are exact decimals: USD per million tokens for token classes (numerically micro-dollars
per token), USD per call for fees. A malformed price is a `PriceBookError` naming the
field, which the catalog reports as one line and the process refuses to start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Token classes, each with its price field: every prompt token is exactly one of the first
# four (uncached input, read from a cache, written to a cache for 5 minutes or for an hour),
# every generated token (reasoning included) is output.
TOKEN_CLASSES = ("input", "cache_read", "cache_write", "cache_write_1h", "output")
# Per-call fees for server-side tools, as providers report them in usage.
FEES = ("web_search",)
# A class a model does not price is billed as another: a cache read or write at the input
# price (what bytespike billed before it knew the classes), a 1-hour write as a 5-minute one.
FALLBACK = {"cache_read": "input", "cache_write": "input", "cache_write_1h": "cache_write"}


def field(token_class: str) -> str:
    """The catalog field holding a token class's price."""
    return f"{token_class}_usd_per_mtok"


def fee_field(fee: str) -> str:
    return f"{fee}_usd_per_call"


_PERIOD_FIELDS = frozenset(
    [*map(field, TOKEN_CLASSES), *map(fee_field, FEES), "id", "effective_from", "tiers"]
)
_TIER_FIELDS = frozenset([*map(field, TOKEN_CLASSES), "above_prompt_tokens"])


class PriceBookError(ValueError):
    """A price field is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each token class."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal

    def of(self, token_class: str) -> Decimal:
        price: Decimal = getattr(self, token_class)
        return price


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates for the whole request when its prompt is above `above` tokens (0: the base)."""

    above: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class Period:
    """The prices in force from `starts` (None: from the beginning) until the next period."""

    id: str
    starts: dt.datetime | None
    tiers: tuple[Tier, ...]  # ascending by `above`; the first is the base (above 0)
    fees: tuple[tuple[str, Decimal], ...] = ()  # (fee, USD per call), for FEES it prices

    @property
    def base(self) -> Rates:
        return self.tiers[0].rates

    def tier(self, prompt_tokens: int) -> Tier:
        """The tier a request with this many prompt tokens is priced by."""
        chosen = self.tiers[0]
        for tier in self.tiers[1:]:
            if prompt_tokens > tier.above:
                chosen = tier
        return chosen

    def reachable(self, prompt_bound: int) -> tuple[Tier, ...]:
        """Every tier a request whose prompt is at most `prompt_bound` tokens may reach."""
        return tuple(t for t in self.tiers if t.above == 0 or prompt_bound > t.above)

    def fee(self, name: str) -> Decimal:
        return dict(self.fees).get(name, Decimal(0))


@dataclass(frozen=True, slots=True)
class PriceBook:
    """A model's price periods, oldest first. The first also prices calls before its start."""

    periods: tuple[Period, ...]

    def at(self, moment: dt.datetime) -> Period:
        """The period in force at `moment` (a call is priced by the one in force when it
        started)."""
        chosen = self.periods[0]
        for period in self.periods[1:]:
            if period.starts is not None and period.starts <= moment:
                chosen = period
        return chosen

    def upcoming(self, moment: dt.datetime) -> tuple[Period, ...]:
        """Periods scheduled to start after `moment`."""
        return tuple(p for p in self.periods if p.starts is not None and p.starts > moment)

    def period(self, period_id: str) -> Period | None:
        return next((p for p in self.periods if p.id == period_id), None)


def flat(input_usd_per_mtok: str | Decimal, output_usd_per_mtok: str | Decimal) -> PriceBook:
    """A book of one period and one tier, every prompt token at the input price."""
    entry = {field("input"): str(input_usd_per_mtok), field("output"): str(output_usd_per_mtok)}
    return parse(entry, "model")


def parse(entry: Mapping[str, object], model_id: str) -> PriceBook:
    """The price book of a catalog entry: its `[[models.prices]]` periods, or the price
    fields on the entry itself as one period."""
    listed = entry.get("prices")
    if listed is None:
        own = {k: v for k, v in entry.items() if k in _PERIOD_FIELDS - {"id", "effective_from"}}
        return PriceBook((_period(own, model_id, first=True),))
    if not isinstance(listed, list) or not listed or not all(isinstance(p, dict) for p in listed):
        raise PriceBookError("prices must be [[models.prices]] tables, at least one")
    inline = sorted(k for k in entry if k in _PERIOD_FIELDS - {"id", "tiers"})
    if inline:
        raise PriceBookError(
            f"{inline[0]} belongs in a [[models.prices]] period when the model lists periods"
        )
    periods = tuple(
        _period(p, model_id, first=i == 0) for i, p in enumerate(_by_start(listed, model_id))
    )
    ids = [p.id for p in periods]
    if len(set(ids)) != len(ids):
        raise PriceBookError("two price periods have the same id")
    return PriceBook(periods)


def _by_start(listed: list[dict[str, object]], model_id: str) -> list[dict[str, object]]:
    """The periods sorted by start; only the first may leave it out, and no two share one."""
    starts = [_start(p) for p in listed]
    if sum(s is None for s in starts) > 1:
        raise PriceBookError("only one price period may leave out effective_from")
    known = [s for s in starts if s is not None]
    if len(set(known)) != len(known):
        raise PriceBookError(f"two price periods start at {_text(_repeated(known))}")
    earliest = dt.datetime.min.replace(tzinfo=dt.UTC)
    order = sorted(range(len(listed)), key=lambda i: starts[i] or earliest)
    return [listed[i] for i in order]


def _repeated(moments: list[dt.datetime]) -> dt.datetime:
    return next(m for m in moments if moments.count(m) > 1)


def _period(raw: Mapping[str, object], model_id: str, *, first: bool) -> Period:
    unknown = sorted(set(raw) - _PERIOD_FIELDS)
    if unknown:
        raise PriceBookError(f"unknown price field {unknown[0]!r}")
    starts = _start(raw)
    where = "the price period" if starts is None else f"the price period from {_text(starts)}"
    base = _rates(raw, where)
    stated = frozenset(c for c in TOKEN_CLASSES if field(c) in raw)
    tiers = (Tier(0, base), *_tiers(raw.get("tiers"), stated, where))
    fees = tuple((fee, _price(raw, fee_field(fee), where)) for fee in FEES if fee_field(fee) in raw)
    given = raw.get("id")
    if given is not None and (not isinstance(given, str) or not given.strip()):
        raise PriceBookError(f"{where}: id must be text")
    label = "initial" if starts is None else _text(starts)
    period_id = str(given).strip() if given is not None else f"{model_id}@{label}"
    if len(period_id) > 200:
        raise PriceBookError(f"{where}: its id is longer than 200 characters")
    return Period(period_id, starts, tiers, fees)


def _rates(raw: Mapping[str, object], where: str) -> Rates:
    """A tier's rates; a class it does not state is priced as its FALLBACK."""
    prices = {"input": _price(raw, field("input"), where)}
    prices["output"] = _price(raw, field("output"), where)
    for token_class in ("cache_read", "cache_write", "cache_write_1h"):
        if field(token_class) in raw:
            prices[token_class] = _price(raw, field(token_class), where)
        else:
            prices[token_class] = prices[FALLBACK[token_class]]
    return Rates(**prices)


def _tiers(raw: object, stated: frozenset[str], where: str) -> list[Tier]:
    """Long-context tiers, ascending; each states every class its period states, so no
    class silently falls back to a cheaper price above the threshold."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise PriceBookError(f"{where}: tiers must be [[models.prices.tiers]] tables")
    tiers = []
    for tier in raw:
        unknown = sorted(set(tier) - _TIER_FIELDS)
        if unknown:
            raise PriceBookError(f"{where}: unknown tier field {unknown[0]!r}")
        above = tier.get("above_prompt_tokens")
        if not isinstance(above, int) or isinstance(above, bool) or above < 1:
            raise PriceBookError(f"{where}: a tier needs above_prompt_tokens, a whole number >= 1")
        here = f"{where}, tier above {above} prompt tokens"
        missing = sorted(c for c in stated if field(c) not in tier)
        if missing:
            raise PriceBookError(f"{here}: state {field(missing[0])}, as its period does")
        tiers.append(Tier(above, _rates(tier, here)))
    thresholds = [t.above for t in tiers]
    if thresholds != sorted(set(thresholds)):
        raise PriceBookError(f"{where}: tiers must be listed by rising above_prompt_tokens")
    return tiers


def _price(raw: Mapping[str, object], name: str, where: str) -> Decimal:
    value = raw.get(name)
    try:
        if isinstance(value, bool) or value is None:
            raise InvalidOperation
        price = Decimal(str(value))
    except InvalidOperation:
        raise PriceBookError(f"{name} missing or not a number ({where})") from None
    if not price.is_finite() or price < 0:
        raise PriceBookError(f"{name} must be a number >= 0 ({where})")
    return price


def _start(raw: Mapping[str, object]) -> dt.datetime | None:
    """`effective_from`: a TOML date (midnight UTC), a datetime with its UTC offset, or
    either as ISO text."""
    value = raw.get("effective_from")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = (
                dt.date.fromisoformat(value)
                if len(value) == 10
                else dt.datetime.fromisoformat(value)
            )
        except ValueError:
            raise PriceBookError(f"effective_from {value!r} is not a date or time") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise PriceBookError(
                f"effective_from {value.isoformat()} needs a UTC offset (e.g. a trailing Z)"
            )
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    raise PriceBookError("effective_from must be a date (2026-03-01) or a time with its offset")


def _text(moment: dt.datetime) -> str:
    """A start as ids and messages show it: the date alone at midnight UTC."""
    if moment.time() == dt.time():
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")
