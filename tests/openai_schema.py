"""Validate bodies against the official OpenAI API description (../shared/reference).

`assert_valid("CreateChatCompletionResponse", body)` fails the test with the schema's own
complaint. The schemas the tests use, with everything they refer to, are kept in
`tests/reference/openai-schemas.json`, extracted from the reference unchanged, so the suite
runs in a clone without the reference beside it; `test_openai_reference.py` checks the copy
still matches the reference wherever both are present. Refresh it with
`python -m tests.openai_schema`.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "openai-openapi.yaml"
VENDORED = Path(__file__).with_name("reference") / "openai-schemas.json"
USED = (
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ErrorResponse",
    "ListModelsResponse",
    "Model",
    "CreateResponse",
    "Response",
    "ResponseStreamEvent",
    "CreateEmbeddingResponse",
)


def load_reference() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with REFERENCE.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=loader)  # noqa: S506 - safe loader
    return spec


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """The USED schemas and every schema they refer to, as {"components": {"schemas"}}."""
    schemas = spec["components"]["schemas"]
    wanted, todo = set(), list(USED)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        refs = re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", json.dumps(schemas[name]))
        todo.extend(refs)
    return {"components": {"schemas": {name: schemas[name] for name in sorted(wanted)}}}


@functools.cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(VENDORED.read_text(encoding="utf-8"))
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


if __name__ == "__main__":
    VENDORED.write_text(json.dumps(extract(load_reference()), indent=1, sort_keys=True) + "\n")
    print(f"wrote {VENDORED}")
