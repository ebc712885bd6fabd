"""Money: integer micro-dollars everywhere; floats never hold a balance.

One USD is 1_000_000 micros. Amounts enter as decimal text (CLI, JSON) and leave as
JSON numbers. The only float is made at the JSON boundary by `to_usd_number`: for any
amount up to `MAX_BALANCE_MICROS` the shortest repr of micros / 1e6 is exactly its decimal
text, so no client ever sees a rounding artefact.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000
# The most a wallet may hold (available + held), and so the largest amount: 1e9 USD. Every
# figure up to it has at most 15 significant digits, which a double (a JSON number in any
# client) carries exactly; past it a balance could be shown a micro-dollar off.
MAX_BALANCE_MICROS = 1_000_000_000 * MICROS_PER_USD
_MAX_USD = Decimal(MAX_BALANCE_MICROS) / MICROS_PER_USD


class MoneyError(ValueError):
    """An amount that cannot be money: not a number, negative where not allowed, too precise."""


def parse_usd(value: object, *, allow_negative: bool = False) -> int:
    """Parse a USD amount (str, int or Decimal, or a JSON number) into micros, exactly."""
    if isinstance(value, bool):
        raise MoneyError("amount must be a number of USD")
    try:
        # repr() of a float is its shortest round-trip text, so 0.1 parses as exactly 0.1.
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a USD amount: {value!r}") from exc
    if not amount.is_finite():
        raise MoneyError(f"not a USD amount: {value!r}")
    if amount < 0 and not allow_negative:
        raise MoneyError("amount must not be negative")
    if abs(amount) > _MAX_USD:
        raise MoneyError(
            f"amount is too large: the maximum is {to_usd_text(MAX_BALANCE_MICROS)} USD"
        )
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise MoneyError("amount has more than 6 decimal places (1 micro-dollar)")
    return int(micros)


def to_usd_number(micros: int) -> float:
    """The JSON number for an amount: exact in decimal form (see module docstring)."""
    return micros / MICROS_PER_USD


def to_usd_text(micros: int) -> str:
    """Human text, e.g. for the CLI: two decimals at least, more only when needed."""
    text = f"{Decimal(micros) / MICROS_PER_USD:f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{whole}.{frac}"


def cost_micros(tokens: int, usd_per_mtok: Decimal) -> Decimal:
    """Exact cost of `tokens` at a price per million tokens, in (possibly fractional) micros.

    A price in USD per million tokens is numerically micro-dollars per token.
    """
    return tokens * usd_per_mtok


def round_up(micros: Decimal) -> int:
    """Charge whole micros, rounding a fractional cost up (never undercharge by a fraction)."""
    return int(micros.to_integral_value(rounding=ROUND_CEILING))
