"""A catalog model's deployments: the single-upstream form is one deployment, a list of
`[[models.deployments]]` takes its defaults from the model, and mistakes stop the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from bytespike import catalog
from bytespike.catalog import CatalogError, Deployment, Model

HEAD = """
[[models]]
id = "gpt-5-4"
input_usd_per_mtok = "2.50"
output_usd_per_mtok = "15.00"
"""


def load(tmp_path: Path, text: str) -> Model:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    (model,) = catalog.load(path).models
    return model


def test_a_single_upstream_entry_is_one_deployment_named_by_its_provider(tmp_path):
    model = load(tmp_path, HEAD + 'provider = "openai"\nupstream_model = "gpt-5.4"\n')
    assert model.deployments == (
        Deployment(name="openai", provider="openai", upstream_model="gpt-5.4"),
    )
    assert (model.provider, model.upstream_model) == ("openai", "gpt-5.4")


def test_deployments_take_the_models_fields_as_defaults(tmp_path):
    text = (
        HEAD
        + """provider = "openai"
upstream_model = "gpt-5.4"

[[models.deployments]]
api_key_env = "OPENAI_KEY_A"
weight = 3

[[models.deployments]]
api_key_env = "OPENAI_KEY_B"

[[models.deployments]]
name = "azure"
provider = "openai-compatible"
base_url = "https://example.openai.azure.com/openai/v1"
upstream_model = "gpt-5-4-prod"
priority = 2
"""
    )
    model = load(tmp_path, text)
    assert model.deployments == (
        Deployment("openai", "openai", "gpt-5.4", api_key_env="OPENAI_KEY_A", weight=3),
        Deployment("openai-2", "openai", "gpt-5.4", api_key_env="OPENAI_KEY_B"),
        Deployment(
            "azure",
            "openai-compatible",
            "gpt-5-4-prod",
            base_url="https://example.openai.azure.com/openai/v1",
            priority=2,
        ),
    )
    assert model.api_key_env == "OPENAI_KEY_A"  # the model's fields: its first deployment's


def test_the_models_own_fields_are_its_first_deployment_by_priority(tmp_path):
    text = (
        HEAD
        + """
[[models.deployments]]
provider = "anthropic"
upstream_model = "claude"
priority = 2

[[models.deployments]]
provider = "gemini"
upstream_model = "gemini-pro"
"""
    )
    model = load(tmp_path, text)
    assert (model.provider, model.upstream_model) == ("gemini", "gemini-pro")
    anthropic = model.on(model.deployments[0])
    assert (anthropic.provider, anthropic.upstream_model) == ("anthropic", "claude")
    assert anthropic.deployments == (model.deployments[0],)


@pytest.mark.parametrize(
    ("deployments", "message"),
    [
        ('provider = "openai"\nwieght = 2', "unknown deployment field 'wieght'"),
        ('provider = "openai"\nweight = 0', "weight must be a whole number >= 1"),
        ('provider = "openai"\nweight = true', "weight must be a whole number >= 1"),
        ('provider = "openai"\npriority = -1', "priority must be a whole number >= 0"),
        ('provider = "opneai"', "provider must be one of"),
        ('provider = "openai-compatible"', "an openai-compatible deployment needs base_url"),
        ('provider = "openai"\nresponses_api = "yes"', "responses_api must be true or false"),
    ],
)
def test_a_malformed_deployment_names_its_model_and_place(tmp_path, deployments, message):
    text = HEAD + '[[models.deployments]]\nprovider = "openai"\n\n[[models.deployments]]\n'
    with pytest.raises(CatalogError, match=r"model 'gpt-5-4', deployments\[1\]: ") as caught:
        load(tmp_path, text + deployments + "\n")
    assert message in str(caught.value)


def test_a_deployment_name_used_twice_is_refused(tmp_path):
    text = HEAD + '[[models.deployments]]\nprovider = "openai"\nname = "a"\n' * 2
    with pytest.raises(CatalogError, match="deployment name 'a' is used twice"):
        load(tmp_path, text)


def test_an_empty_deployments_list_is_refused(tmp_path):
    with pytest.raises(CatalogError, match="deployments must be"):
        load(tmp_path, HEAD + 'provider = "openai"\ndeployments = []\n')


def test_an_embedding_model_needs_an_embeddings_api_on_every_deployment(tmp_path):
    text = (
        HEAD
        + """kind = "embedding"
[[models.deployments]]
provider = "openai"
[[models.deployments]]
provider = "anthropic"
"""
    )
    with pytest.raises(CatalogError, match=r"deployments\[1\]: an embedding model needs"):
        load(tmp_path, text)
