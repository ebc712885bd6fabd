"""Errors in the client's own format: OpenAI's {"error": {message, type, param, code}} on
/v1/chat/completions and /v1/models, Anthropic's {"type": "error", "error": {type, message}}
on /v1/messages. Both keep the documented envelope's `error.type` and `error.message`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bytespike.api.responses import JSON
from bytespike.errors import BytespikeError
from bytespike.upstream.base import UpstreamFailure

Failure = BytespikeError | UpstreamFailure

# Anthropic's documented error types by status; ours map onto them.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def openai_body(failure: Failure) -> dict[str, Any]:
    return {
        "error": {
            "message": failure.message,
            "type": failure.type,
            "param": failure.param,
            "code": failure.code,
        }
    }


def anthropic_body(failure: Failure) -> dict[str, Any]:
    # Anthropic names its errors by status (a 413 is request_too_large, whatever we call it
    # elsewhere); an upstream's own type stands where the status says nothing more.
    type_ = failure.type
    if failure.status != 400 and failure.status in _ANTHROPIC_TYPES:
        type_ = _ANTHROPIC_TYPES[failure.status]
    elif type_ not in _ANTHROPIC_TYPES.values():
        type_ = "api_error" if failure.status >= 500 else "invalid_request_error"
    return {"type": "error", "error": {"type": type_, "message": failure.message}}


def openai_response(failure: Failure, extra_headers: dict[str, str] | None = None) -> JSON:
    headers = _merge(failure.headers, extra_headers)
    return JSON(openai_body(failure), status_code=failure.status, headers=headers)


def anthropic_response(failure: Failure, extra_headers: dict[str, str] | None = None) -> JSON:
    headers = _merge(failure.headers, extra_headers)
    return JSON(anthropic_body(failure), status_code=failure.status, headers=headers)


def _merge(first: Mapping[str, str], second: dict[str, str] | None) -> dict[str, str]:
    return {**(second or {}), **first}
