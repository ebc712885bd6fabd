"""The OpenAPI document describes what the account endpoint really returns, and every model
route (its request body, parameters and refusals) as it is served."""

from collections.abc import Iterator
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from bytespike.accounts.schemas import Account
from bytespike.api.errors import ErrorResponse
from tests.factories import add_member, make_key, make_org, make_user, top_up


async def test_documented_account_and_error_shapes_match_real_responses(ctx, client):
    await make_user(ctx)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "owner")
    await top_up(ctx, "12.5", user="ada")
    key = await make_key(ctx, models=[("gpt-5-4", 50_000_000)])

    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/me/account"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Account"
    }
    assert {"401", "403", "429"} <= set(operation["responses"])

    ok = await client.get("/api/v1/me/account", headers={"x-api-key": key["key"]})
    account = Account.model_validate(ok.json(), strict=True)
    assert account.model_dump() == ok.json()  # nothing undocumented, nothing missing

    denied = await client.get("/api/v1/me/account")
    assert ErrorResponse.model_validate(denied.json()).error.type == "authentication_error"


GEMINI_METHODS = (
    ("generateContent", "GenerateContentRequest", True),
    ("streamGenerateContent", "GenerateContentRequest", True),
    ("countTokens", "CountTokensRequest", False),
    ("embedContent", "EmbedContentRequest", True),
    ("batchEmbedContents", "BatchEmbedContentsRequest", True),
)
# path: (its request body's schema, whether it is metered, its error envelope)
MODEL_ROUTES = {
    "/v1/chat/completions": ("ChatRequest", True, "OpenAIError"),
    "/v1/messages": ("MessagesRequest", True, "AnthropicError"),
    "/v1/responses": ("ResponsesRequest", True, "OpenAIError"),
    "/v1/embeddings": ("EmbeddingsRequest", True, "OpenAIError"),
    "/v1/messages/count_tokens": ("MessagesRequest", False, "AnthropicError"),
    **{
        f"/{version}/models/{{model}}:{method}": (f"Gemini{schema}", metered, "GeminiError")
        for version in ("v1beta", "v1")
        for method, schema, metered in GEMINI_METHODS
    },
}
REQUIRED = {
    "ChatRequest": {"model", "messages"},
    "EmbeddingsRequest": {"model", "input"},
    "GeminiGenerateContentRequest": {"contents"},
    "GeminiEmbedContentRequest": {"content"},
    "GeminiBatchEmbedContentsRequest": {"requests"},
}


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for item in value.values():
            yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


async def test_every_model_route_is_documented_with_its_body_and_refusals(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for path, (schema, metered, envelope) in MODEL_ROUTES.items():
        operation = document["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{schema}"}, path
        assert REQUIRED.get(schema, set()) <= set(schemas[schema].get("required", [])), path
        parameters = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        assert (("header", "Idempotency-Key") in parameters) == metered, path
        assert {"402", "409", "422"} <= set(operation["responses"]) or not metered, path
        assert "402" not in operation["responses"] or metered, path  # a free call costs nothing
        if "{model}" in path:
            assert {("path", "model"), ("query", "key")} <= parameters, path
        refusal = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert refusal == {"$ref": f"#/components/schemas/{envelope}"}, path

        # The documented route is served: without a key, its own 401 in that envelope.
        answer = await client.post(path.replace("{model}", "mock"), json={})
        assert answer.status_code == 401, path
        Draft202012Validator(schemas[envelope]).validate(answer.json())

    for path in ("/v1beta/models", "/v1beta/models/{model}"):
        operation = document["paths"][path]["get"]
        refusal = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert refusal == {"$ref": "#/components/schemas/GeminiError"}
        answer = await client.get(path.replace("{model}", "mock"))
        assert answer.status_code == 401, path
        Draft202012Validator(schemas["GeminiError"]).validate(answer.json())


async def test_every_reference_in_the_document_resolves_to_a_valid_schema(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for ref in set(refs(document)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
