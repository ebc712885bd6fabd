"""The price book in the catalog file: every class, tiers, periods, and one-line refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bytespike import catalog
from bytespike.billing import pricebook
from bytespike.catalog import CatalogError

MODEL = """
[[models]]
id = "m"
provider = "mock"
"""

PERIODS = (
    MODEL
    + """
[[models.prices]]
input_usd_per_mtok = "3"
output_usd_per_mtok = "15"
cache_read_usd_per_mtok = "0.30"

[[models.prices.tiers]]
above_prompt_tokens = 200000
input_usd_per_mtok = "6"
output_usd_per_mtok = "22.50"
cache_read_usd_per_mtok = "0.60"

[[models.prices]]
id = "spring"
effective_from = 2026-04-01
input_usd_per_mtok = "2"
output_usd_per_mtok = "10"
cache_read_usd_per_mtok = "0.20"
web_search_usd_per_call = "0.01"

[[models.prices]]
effective_from = 2026-03-15T09:30:00Z
input_usd_per_mtok = "2.5"
output_usd_per_mtok = "12"
cache_read_usd_per_mtok = "0.25"
"""
)


def load(tmp_path, text: str) -> catalog.Catalog:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return catalog.load(path)


def test_periods_tiers_and_fees_are_read_in_order_of_their_start(tmp_path):
    model = load(tmp_path, PERIODS).get("m")
    assert model is not None
    book = model.prices
    assert [p.id for p in book.periods] == ["m@initial", "m@2026-03-15T09:30:00Z", "spring"]
    first = book.periods[0]
    assert first.tier(200_000).above == 0 and first.tier(200_001).above == 200_000
    assert first.tier(200_001).rates.cache_read == Decimal("0.60")
    # Classes a period leaves out cost input; a 1-hour write what a 5-minute one does.
    assert first.base.cache_write == first.base.cache_write_1h == Decimal("3")
    assert book.periods[2].fee("web_search") == Decimal("0.01")
    assert book.periods[1].fee("web_search") == 0

    assert book.at(datetime(2026, 3, 15, 9, 29, tzinfo=UTC)).id == "m@initial"
    assert book.at(datetime(2026, 3, 15, 9, 30, tzinfo=UTC)).id == "m@2026-03-15T09:30:00Z"
    assert book.at(datetime(2030, 1, 1, tzinfo=UTC)).id == "spring"
    assert [p.id for p in book.upcoming(datetime(2026, 3, 20, tzinfo=UTC))] == ["spring"]


def test_the_compact_form_is_one_period_and_may_carry_tiers(tmp_path):
    text = (
        MODEL
        + """input_usd_per_mtok = "1"
output_usd_per_mtok = "2"

[[models.tiers]]
above_prompt_tokens = 100
input_usd_per_mtok = "3"
output_usd_per_mtok = "4"
"""
    )
    book = load(tmp_path, text).models[0].prices
    assert len(book.periods) == 1 and [t.above for t in book.periods[0].tiers] == [0, 100]


PRICES = MODEL + 'input_usd_per_mtok = "1"\noutput_usd_per_mtok = "2"\n'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (MODEL, "input_usd_per_mtok missing"),
        (PRICES.replace('"1"', '"-1"'), "input_usd_per_mtok must be a number >= 0"),
        (PRICES + 'cache_read_usd_per_mtok = "cheap"\n', "cache_read_usd_per_mtok missing or not"),
        (PRICES + 'web_search_usd_per_call = "Infinity"\n', "web_search_usd_per_call must be"),
        (
            PERIODS.replace('id = "spring"\n', "").replace("2026-04-01", "2026-03-15T09:30:00Z"),
            "two price periods start at 2026-03-15T09:30:00Z",
        ),
        (PERIODS.replace("effective_from = 2026-04-01\n", ""), "only one price period may"),
        (PERIODS.replace('id = "spring"', 'id = "m@initial"'), "the same id"),
        (PERIODS.replace("2026-03-15T09:30:00Z", "2026-03-15T09:30:00"), "needs a UTC offset"),
        (PERIODS.replace("2026-04-01", '"April"'), "'April' is not a date"),
        (
            PERIODS.replace('cache_read_usd_per_mtok = "0.60"\n', ""),
            "tier above 200000 prompt tokens: state cache_read_usd_per_mtok",
        ),
        (PERIODS.replace("above_prompt_tokens = 200000", "above_prompt_tokens = 0"), "whole"),
        (PERIODS.replace('cache_read_usd_per_mtok = "0.20"', "cache_reed = 1"), "cache_reed"),
        (
            PERIODS.replace('provider = "mock"\n', 'provider = "mock"\ninput_usd_per_mtok = "1"\n'),
            "belongs in a [[models.prices]] period",
        ),
        (MODEL + "prices = []\n", "at least one"),
    ],
    ids=lambda value: value if len(value) < 60 else "catalog",
)
def test_a_malformed_price_is_refused_in_one_line_naming_the_model_and_field(
    tmp_path, text, fragment
):
    with pytest.raises(CatalogError) as refused:
        load(tmp_path, text)
    message = str(refused.value)
    assert message.startswith("model 'm': ") and fragment in message, message
    assert "\n" not in message


def test_flat_is_the_book_of_two_prices():
    book = pricebook.flat("0.15", "0.6")
    assert book.periods[0].base.input == Decimal("0.15")
    assert book.periods[0].base.output == Decimal("0.6")
