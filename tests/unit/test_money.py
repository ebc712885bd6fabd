"""Money is exact: USD text and JSON numbers become integer micros and come back unchanged."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from bytespike.cli.runner import usd_text
from bytespike.money import (
    MAX_BALANCE_MICROS,
    MoneyError,
    cost_micros,
    parse_usd,
    round_up,
    to_usd_number,
    to_usd_text,
)


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("250", 250_000_000),
        ("0.1", 100_000),
        ("19.99", 19_990_000),
        ("0.000001", 1),
        ("1e2", 100_000_000),
        (" 5.5 ", 5_500_000),
        (0.1, 100_000),
        (19.99, 19_990_000),
        (0.3, 300_000),
        (1.005, 1_005_000),
        (5, 5_000_000),
        (Decimal("3.25"), 3_250_000),
        ("1000000000", 1_000_000_000_000_000),
    ],
)
def test_parse_usd_is_exact(value, micros):
    assert parse_usd(value) == micros


@pytest.mark.parametrize(
    "value",
    [
        "0.0000001",
        1e-7,
        "19.9999999",
        "NaN",
        float("nan"),
        "inf",
        float("inf"),
        float("-inf"),
        "sNaN",
        True,
        False,
        "-1",
        -0.5,
        "",
        "abc",
        "1,5",
        None,
        "1000000000.000001",
        1e300,
    ],
)
def test_parse_usd_rejects_what_is_not_money(value):
    with pytest.raises(MoneyError):
        parse_usd(value)


def test_negative_amounts_only_where_allowed():
    assert parse_usd("-2.5", allow_negative=True) == -2_500_000
    with pytest.raises(MoneyError):
        parse_usd("-2.5")


def test_json_numbers_round_trip_exactly():
    rng = random.Random(7)  # noqa: S311 - reproducible samples, not a secret
    samples = [0, 1, 10, 100_000, 19_990_000, 999_999, 1_000_000_000_000_000]
    samples += [rng.randrange(0, 1_000_000_000_000_000) for _ in range(20_000)]
    samples += [rng.randrange(0, 100_000_000) for _ in range(20_000)]
    for micros in samples:
        number = to_usd_number(micros)
        assert Decimal(repr(number)) == Decimal(micros) / 1_000_000, micros
        assert parse_usd(number) == micros


def test_usd_text():
    assert to_usd_text(250_000_000) == "250.00"
    assert to_usd_text(19_990_000) == "19.99"
    assert to_usd_text(1) == "0.000001"
    assert to_usd_text(-1_500_000) == "-1.50"


def test_costs_round_up_to_the_next_micro():
    assert round_up(Decimal("7")) == 7
    assert round_up(Decimal("7.000001")) == 8
    assert round_up(Decimal("0.1")) == 1
    assert round_up(Decimal("0")) == 0
    assert round_up(cost_micros(1_234, Decimal("2.50"))) == 3_085
    assert round_up(cost_micros(1_235, Decimal("2.50"))) == 3_088  # 3087.5 rounds up


def test_every_balance_up_to_the_maximum_is_exact_as_a_json_number():
    # Just under the maximum, every digit of a 15-significant-digit amount must survive.
    for micros in (MAX_BALANCE_MICROS, MAX_BALANCE_MICROS - 1, MAX_BALANCE_MICROS - 123_457):
        assert Decimal(repr(to_usd_number(micros))) == Decimal(micros) / 1_000_000
    assert parse_usd(to_usd_number(MAX_BALANCE_MICROS)) == MAX_BALANCE_MICROS


def test_the_cli_renders_a_committed_balance_past_the_maximum():
    """A wallet topped up past the bound before it existed must still print, not crash after
    its change is committed."""
    assert usd_text(1_000_000_250.0) == "1000000250.00"
    assert usd_text(0.000123) == "0.000123"
