"""The model catalog: the shipped models with exact prices, an override, and refusals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bytespike import catalog
from bytespike.billing import pricebook
from bytespike.catalog import CatalogError, Model
from bytespike.settings import Settings

ONE_MODEL = """
[[models]]
id = "local-llama"
provider = "openai"
upstream_model = "llama-3.3-70b"
input_usd_per_mtok = "0.10"
output_usd_per_mtok = "0.40"
"""


def test_the_shipped_catalog_has_the_three_models_mock_and_two_embedders_with_exact_prices():
    shipped = catalog.load()
    assert shipped.ids == [
        "claude-sonnet-4-6",
        "gpt-5-4",
        "gemini-3-1-pro",
        "mock",
        "text-embedding-3-small",
        "gemini-embedding-001",
    ]
    base = {m.id: m.prices.periods[0].base for m in shipped.models}
    prices = {m.id: (m.provider, base[m.id].input, base[m.id].output) for m in shipped.models}
    assert prices == {
        "claude-sonnet-4-6": ("anthropic", Decimal("3.00"), Decimal("15.00")),
        "gpt-5-4": ("openai", Decimal("2.50"), Decimal("15.00")),
        "gemini-3-1-pro": ("gemini", Decimal("2.00"), Decimal("12.00")),
        "mock": ("mock", Decimal("3.00"), Decimal("15.00")),
        "text-embedding-3-small": ("openai", Decimal("0.02"), Decimal("0")),
        "gemini-embedding-001": ("gemini", Decimal("0.15"), Decimal("0")),
    }
    kinds = {m.id: m.kind for m in shipped.models}
    assert [k for k, kind in kinds.items() if kind == "embedding"] == [
        "text-embedding-3-small",
        "gemini-embedding-001",
    ]
    assert all(isinstance(rates.input, Decimal) for rates in base.values())
    assert "gpt-5-4" in shipped and "gpt-4" not in shipped
    assert shipped.get("gpt-5-4").upstream_model == "gpt-5.4"  # type: ignore[union-attr]


def test_bytespike_catalog_overrides_the_shipped_file(tmp_path, monkeypatch):
    path = tmp_path / "catalog.toml"
    path.write_text(ONE_MODEL)
    monkeypatch.setenv("BYTESPIKE_CATALOG", str(path))
    loaded = catalog.load(Settings().catalog)
    assert loaded.models == [
        Model(
            id="local-llama",
            provider="openai",
            upstream_model="llama-3.3-70b",
            prices=pricebook.parse(
                {"input_usd_per_mtok": "0.10", "output_usd_per_mtok": "0.40"}, "local-llama"
            ),
            context_tokens=128_000,
            max_output_tokens=8_192,
        )
    ]


def test_a_float_price_keeps_its_decimal_text(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(ONE_MODEL.replace('"0.10"', "0.1"))
    assert catalog.load(path).models[0].prices.periods[0].base.input == Decimal("0.1")


@pytest.mark.parametrize(
    "text",
    [
        "this is not toml [",
        ONE_MODEL.replace('id = "local-llama"\n', ""),
        ONE_MODEL.replace('provider = "openai"\n', ""),
        ONE_MODEL.replace('"0.10"', '"ten cents"'),
        ONE_MODEL.replace('"0.10"', '"-1"'),
        ONE_MODEL.replace('"0.10"', '"NaN"'),
        ONE_MODEL.replace('"0.10"', "true"),
        ONE_MODEL + 'context_tokens = "lots"\n',
        ONE_MODEL + 'kind = "vision"\n',
        ONE_MODEL.replace('"openai"', '"anthropic"') + 'kind = "embedding"\n',
        ONE_MODEL.replace('"openai"', '"mock"') + 'kind = "embedding"\n',
        ONE_MODEL + ONE_MODEL,
        'models = "claude"',
        "models = [1, 2]",
        "",
    ],
)
def test_a_malformed_catalog_is_refused(tmp_path, text):
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(CatalogError):
        catalog.load(path)


def test_a_model_is_a_chat_model_unless_its_kind_says_embedding(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(
        ONE_MODEL + ONE_MODEL.replace("local-llama", "local-embed") + 'kind = "embedding"\n'
    )
    assert [(m.id, m.kind) for m in catalog.load(path).models] == [
        ("local-llama", "chat"),
        ("local-embed", "embedding"),
    ]


def test_a_missing_catalog_is_refused(tmp_path):
    with pytest.raises(CatalogError):
        catalog.load(Path(tmp_path / "nowhere.toml"))


def test_an_openai_compatible_server_may_say_it_speaks_the_responses_api(tmp_path):
    entry = ONE_MODEL.replace('provider = "openai"', 'provider = "openai-compatible"')
    entry += 'base_url = "http://127.0.0.1:8000/v1"\n'
    path = tmp_path / "catalog.toml"
    path.write_text(entry + "responses_api = true\n")
    assert catalog.load(path).models[0].responses_api is True
    path.write_text(entry)
    assert catalog.load(path).models[0].responses_api is False
    path.write_text(entry + 'responses_api = "yes"\n')
    with pytest.raises(CatalogError, match="responses_api"):
        catalog.load(path)
