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
    type_ = failure.type
    if type_ not in _ANTHROPIC_TYPES.values():
        type_ = _ANTHROPIC_TYPES.get(failure.status, "api_error")
    return {"type": "error", "error": {"type": type_, "message": failure.message}}


def openai_response(failure: Failure, extra_headers: dict[str, str] | None = None) -> JSON:
    headers = _merge(failure.headers, extra_headers)
    return JSON(openai_body(failure), status_code=failure.status, headers=headers)


def anthropic_response(failure: Failure, extra_headers: dict[str, str] | None = None) -> JSON:
    headers = _merge(failure.headers, extra_headers)
    return JSON(anthropic_body(failure), status_code=failure.status, headers=headers)


def _merge(first: Mapping[str, str], second: dict[str, str] | None) -> dict[str, str]:
    return {**(second or {}), **first}
