"""The OpenAI schemas the suite validates against are the reference's own, unchanged."""

from __future__ import annotations

import json

import pytest

from tests import openai_schema


def test_the_vendored_schemas_are_extracted_unchanged_from_the_reference() -> None:
    if not openai_schema.REFERENCE.exists():
        pytest.skip(f"the reference {openai_schema.REFERENCE} is not beside this clone")
    vendored = json.loads(openai_schema.VENDORED.read_text(encoding="utf-8"))
    assert vendored == openai_schema.extract(openai_schema.load_reference())


def test_the_vendored_schemas_hold_every_schema_the_tests_use() -> None:
    schemas = json.loads(openai_schema.VENDORED.read_text(encoding="utf-8"))["components"]
    assert set(openai_schema.USED) <= set(schemas["schemas"])
    # A real failure is reported, so the validator is not vacuous.
    assert openai_schema.errors("ErrorResponse", {"error": {"message": "m"}})
