"""Validate bodies against the official OpenAI API description (../shared/reference).

`assert_valid("CreateChatCompletionResponse", body)` fails the test with the schema's own
complaint. The 3 MB YAML is parsed once per test session.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parents[2] / "shared" / "reference" / "openai-openapi.yaml"


@functools.cache
def _spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=loader)  # noqa: S506 - safe loader
    return _nullable(spec)  # type: ignore[no-any-return]


def _nullable(node: Any) -> Any:
    """The spec says OpenAPI 3.1 but still marks nulls the 3.0 way (`nullable: true`), which
    JSON Schema ignores: rewrite each such schema as "this, or null"."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    spec = _spec()
    registry: Registry[Any] = Registry().with_resource(
        "urn:openai", Resource(contents=spec, specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:openai#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)


def errors(name: str, body: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in _validator(name).iter_errors(body)
    ]


def assert_valid(name: str, body: Any) -> None:
    problems = errors(name, body)
    assert not problems, f"not a valid OpenAI {name}: {problems[:5]}"
