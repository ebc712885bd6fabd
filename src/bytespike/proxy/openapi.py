"""The model routes in the OpenAPI document. They are plain Starlette routes
(proxy/routes.py), which FastAPI does not describe; their request bodies are documented by
the very schemas the gateway checks them against (proxy/chat_schema.py,
proxy/messages_schema.py, proxy/responses_schema.py), and their answers by the providers'
references."""

from __future__ import annotations

from typing import Any

from bytespike.proxy.chat_schema import ChatRequest
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


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the model routes added (in place)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    paths = document.setdefault("paths", {})
    routes = (
        ("/v1/chat/completions", "OpenAI Chat Completions, metered", ChatRequest, "Chat"),
        ("/v1/messages", "Anthropic Messages, metered", MessagesRequest, "Messages"),
        ("/v1/responses", "OpenAI Responses, metered", ResponsesRequest, "Responses"),
    )
    for path, summary, model, prefix in routes:
        body = {"$ref": _add(components, model, prefix)}
        paths[path] = {
            "post": {
                "tags": ["models"],
                "summary": summary,
                "operationId": prefix.lower(),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "200": {"description": "The answer, or an event stream when `stream` is true"},
                    **{code: {"description": text} for code, text in _REFUSALS.items()},
                },
            }
        }
    paths["/v1/messages/count_tokens"] = _count_tokens()
    listing = {"200": {"description": "OpenAI's list format, with each model's prices"}}
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
    refusals = {k: v for k, v in _REFUSALS.items() if k != "402"}
    return {
        "post": {
            "tags": ["models"],
            "summary": "Anthropic token count, free (Anthropic's own for Claude, else an estimate)",
            "operationId": "count_message_tokens",
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {
                    "description": "The input tokens",
                    "content": {"application/json": {"schema": answer}},
                },
                **{code: {"description": text} for code, text in refusals.items()},
            },
        }
    }


def _add(components: dict[str, Any], model: type[Schema], prefix: str) -> str:
    """Put `model`'s schema and its definitions into the components, under `prefix`."""
    schema = model.model_json_schema(ref_template=f"#/components/schemas/{prefix}{{model}}")
    for name, definition in schema.pop("$defs", {}).items():
        components[prefix + name] = definition
    components[prefix + "Request"] = schema
    return f"#/components/schemas/{prefix}Request"
