"""The model routes in the OpenAPI document. They are plain Starlette routes
(proxy/routes.py, proxy/gemini_routes.py), which FastAPI does not describe; their request
bodies are documented by the very schemas the gateway checks them against
(proxy/chat_schema.py, proxy/messages_schema.py, proxy/responses_schema.py,
proxy/embeddings.py, proxy/gemini_schema.py), their refusals by each client API's error
envelope, and their answers by the providers' references."""

from __future__ import annotations

from typing import Any

from bytespike.proxy import gemini_schema
from bytespike.proxy.chat_schema import ChatRequest
from bytespike.proxy.embeddings import EmbeddingRequest
from bytespike.proxy.messages_schema import MessagesRequest
from bytespike.proxy.responses_schema import ResponsesRequest
from bytespike.proxy.validation import Schema

_REFUSALS = {
    "400": "Malformed body: `param` names the field (OpenAI routes)",
    "401": "Missing, malformed, unknown or revoked key",
    "402": "Not enough money, or a spend cap reached (billing_error)",
    "403": "Model not on the key's roster, or the key's org paused",
    "404": "Unknown model",
    "408": "The body did not arrive in time",
    "413": "The body is larger than the model routes' limit",
    "429": "Per-minute limit spent; see Retry-After",
    "502": "The upstream failed or answered something malformed",
    "503": "The database is unavailable; see Retry-After",
    "504": "The upstream did not answer in time",
}
# The metered calls' Idempotency-Key (idempotency/claims.py; docs/idempotency.md).
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A retry with the same key and request (within 24 h, for this API key) "
    "gets the first answer, `Idempotent-Replayed: true`, billed once",
}
_IDEMPOTENT_REFUSALS = {
    "409": "The first request with this Idempotency-Key is still running (or left no answer)",
    "422": "This Idempotency-Key was used for a different request",
}


# Each client API's error body, as its refusals come.
_ENVELOPES: dict[str, dict[str, Any]] = {
    "OpenAIError": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
                "required": ["message", "type", "param", "code"],
            }
        },
        "required": ["error"],
    },
    "AnthropicError": {
        "type": "object",
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                "required": ["type", "message"],
            },
        },
        "required": ["type", "error"],
    },
    "GeminiError": {
        "description": "Google's `google.rpc.Status`; our error type in an ErrorInfo detail",
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "description": "The HTTP status"},
                    "message": {"type": "string"},
                    "status": {"type": "string", "examples": ["INVALID_ARGUMENT"]},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
                "required": ["code", "message", "status"],
            }
        },
        "required": ["error"],
    },
}
_STREAMS = "The answer, or an event stream when `stream` is true"
# path, operationId, summary, request body, its components' prefix, error envelope, answer
_METERED = (
    ("/v1/chat/completions", "chat", "OpenAI Chat Completions, metered", ChatRequest, "Chat",
     "OpenAIError", _STREAMS),
    ("/v1/messages", "messages", "Anthropic Messages, metered", MessagesRequest, "Messages",
     "AnthropicError", _STREAMS),
    ("/v1/responses", "responses", "OpenAI Responses, metered", ResponsesRequest, "Responses",
     "OpenAIError", _STREAMS),
    ("/v1/embeddings", "embeddings", "OpenAI embeddings, metered (embedding models)",
     EmbeddingRequest, "Embeddings", "OpenAIError", "The embeddings, in OpenAI's list format"),
)  # fmt: skip
# Gemini's methods: name, summary, request body, answer, metered
_GEMINI = (
    ("generateContent", "Gemini generateContent, metered (chat models)",
     gemini_schema.GenerateContentRequest, "A GenerateContentResponse", True),
    ("streamGenerateContent", "Gemini streamGenerateContent, metered (chat models)",
     gemini_schema.GenerateContentRequest,
     "GenerateContentResponses: Server-Sent Events with `alt=sse`, else one JSON array", True),
    ("countTokens", "Gemini token count, free (Gemini's own for Gemini models, else an "
     "estimate)", gemini_schema.CountTokensRequest, "`{totalTokens}`", False),
    ("embedContent", "Gemini embedContent, metered (embedding models)",
     gemini_schema.EmbedContentRequest, "`{embedding: {values}}`", True),
    ("batchEmbedContents", "Gemini batchEmbedContents, metered (embedding models)",
     gemini_schema.BatchEmbedContentsRequest, "`{embeddings: [{values}]}`, in order", True),
)  # fmt: skip
_GOOGLE_KEYS = [
    {
        "name": "key",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "The API key, as Google's SDKs may send it (or `x-goog-api-key`, "
        "`Authorization: Bearer`, `x-api-key`)",
    },
    {"name": "x-goog-api-key", "in": "header", "required": False, "schema": {"type": "string"}},
]


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the model routes added (in place)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(_ENVELOPES)
    paths = document.setdefault("paths", {})
    for path, operation_id, summary, model, prefix, envelope, answer in _METERED:
        body = _add(components, model, prefix)
        paths[path] = {
            "post": {
                "tags": ["models"],
                "summary": summary,
                "operationId": operation_id,
                "parameters": [_IDEMPOTENCY],
                "requestBody": _body(body),
                "responses": {"200": {"description": answer}, **_refusals(envelope, metered=True)},
            }
        }
    paths["/v1/messages/count_tokens"] = _count_tokens()
    paths.update(_gemini(components))
    listing = {
        "200": {
            "description": "OpenAI's list format, with each model's prices (Gemini's for a "
            "key sent as Google's SDKs send it: `x-goog-api-key` or `?key=`)"
        }
    }
    paths["/v1/models"] = {
        "get": {
            "tags": ["models"],
            "summary": "Models this key may call",
            "operationId": "list_models",
            "responses": listing,
        }
    }
    paths["/v1/responses/{response_id}"] = _stored_response()
    paths["/v1/models/{model_id}"] = {
        "get": {
            "tags": ["models"],
            "summary": "One model this key may call",
            "operationId": "get_model",
            "parameters": [
                {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {"description": "The model"},
                "404": {"description": "Unknown or not on the roster"},
            },
        }
    }
    return document


def _stored_response() -> dict[str, Any]:
    """GET and DELETE of a response stored by POST /v1/responses (`store`)."""
    parameter = {
        "name": "response_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    missing = {
        "404": {"description": "No such response of this key's user (or older than 30 days)"}
    }
    return {
        "get": {
            "tags": ["models"],
            "summary": "A stored response",
            "operationId": "get_response",
            "parameters": [parameter],
            "responses": {"200": {"description": "The Response object, as answered"}, **missing},
        },
        "delete": {
            "tags": ["models"],
            "summary": "Delete a stored response",
            "operationId": "delete_response",
            "parameters": [parameter],
            "responses": {"200": {"description": "`{id, object, deleted: true}`"}, **missing},
        },
    }


def _count_tokens() -> dict[str, Any]:
    """POST /v1/messages/count_tokens: a Messages body, its input tokens; nothing billed."""
    body = {"$ref": "#/components/schemas/MessagesRequest"}
    answer = {
        "type": "object",
        "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
        "required": ["input_tokens"],
    }
    return {
        "post": {
            "tags": ["models"],
            "summary": "Anthropic token count, free (Anthropic's own for Claude, else an estimate)",
            "operationId": "count_message_tokens",
            "requestBody": _body(body),
            "responses": {
                "200": {
                    "description": "The input tokens",
                    "content": {"application/json": {"schema": answer}},
                },
                **_refusals("AnthropicError", metered=False),
            },
        }
    }


def _gemini(components: dict[str, Any]) -> dict[str, Any]:
    """Gemini's routes, under /v1beta/ and /v1/ alike: `POST models/{model}:method` for each
    method, `GET models` and `GET models/{model}`."""
    paths: dict[str, Any] = {}
    model = {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
    for version in ("v1beta", "v1"):
        for method, summary, request, answer, metered in _GEMINI:
            parameters = [model, *_GOOGLE_KEYS] + ([_IDEMPOTENCY] if metered else [])
            if method == "streamGenerateContent":
                sse = {"name": "alt", "in": "query", "required": False}
                parameters.append(sse | {"schema": {"type": "string", "enum": ["sse"]}})
            paths[f"/{version}/models/{{model}}:{method}"] = {
                "post": {
                    "tags": ["models"],
                    "summary": summary,
                    "description": "Field names in camelCase or snake_case, as Google reads them",
                    "operationId": f"gemini_{version}_{method}",
                    "parameters": parameters,
                    "requestBody": _body(_add(components, request, "Gemini", request.__name__)),
                    "responses": {
                        "200": {"description": answer},
                        **_refusals("GeminiError", metered=metered),
                    },
                }
            }
    paths["/v1beta/models"] = {"get": _gemini_listing()}
    paths["/v1beta/models/{model}"] = {
        "get": {
            "tags": ["models"],
            "summary": "One model this key may call, in Gemini's shape",
            "operationId": "gemini_get_model",
            "parameters": [model, *_GOOGLE_KEYS],
            "responses": {
                "200": {"description": "Gemini's Model: name, token limits, methods"},
                **_refusals("GeminiError", codes=("401", "403", "404", "429")),
            },
        }
    }
    return paths


def _gemini_listing() -> dict[str, Any]:
    paging = [
        {"name": "pageSize", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "pageToken", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    return {
        "tags": ["models"],
        "summary": "Models this key may call, in Gemini's shape",
        "operationId": "gemini_list_models",
        "parameters": [*paging, *_GOOGLE_KEYS],
        "responses": {
            "200": {"description": "`{models, nextPageToken}`: a page of `pageSize` (50) models"},
            **_refusals("GeminiError", codes=("400", "401", "403", "429")),
        },
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _refusals(
    envelope: str, *, metered: bool = False, codes: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """A route's refusals, each in its error `envelope`: `codes` of _REFUSALS, else all of
    them but a free call's 402, and a metered call's Idempotency-Key refusals too."""
    if codes is None:
        codes = tuple(code for code in _REFUSALS if metered or code != "402")
    texts = {code: _REFUSALS[code] for code in codes}
    if metered:
        texts |= _IDEMPOTENT_REFUSALS
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{envelope}"}}}
    return {code: {"description": text, "content": content} for code, text in sorted(texts.items())}


def _add(
    components: dict[str, Any], model: type[Schema], prefix: str, name: str = "Request"
) -> dict[str, str]:
    """Put `model`'s schema and its definitions into the components, under `prefix`; a
    reference to it."""
    schema = model.model_json_schema(ref_template=f"#/components/schemas/{prefix}{{model}}")
    for key, definition in schema.pop("$defs", {}).items():
        components[prefix + key] = definition
    components[prefix + name] = schema
    return {"$ref": f"#/components/schemas/{prefix}{name}"}
