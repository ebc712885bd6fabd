"""Errors in the client's own format: OpenAI's {"error": {message, type, param, code}} on
/v1/chat/completions and /v1/models, Anthropic's {"type": "error", "error": {type, message}}
on /v1/messages. Both keep the documented envelope's `error.type` and `error.message`."""

from __future__ import annotations

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


def _parts(failure: Failure) -> tuple[int, str, str, str | None, dict[str, str]]:
    if isinstance(failure, BytespikeError):
        return failure.status, failure.type, failure.message, failure.code, failure.headers
    return failure.status, failure.type, failure.message, None, {}


def openai_body(failure: Failure, param: str | None = None) -> dict[str, Any]:
    _status, type_, message, code, _headers = _parts(failure)
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def anthropic_body(failure: Failure) -> dict[str, Any]:
    status, type_, message, _code, _headers = _parts(failure)
    if type_ not in _ANTHROPIC_TYPES.values():
        type_ = _ANTHROPIC_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": type_, "message": message}}


def openai_response(failure: Failure, extra_headers: dict[str, str] | None = None) -> JSON:
    status, _type, _message, _code, headers = _parts(failure)
    param = failure.param if isinstance(failure, BytespikeError) else None
    return JSON(
        openai_body(failure, param), status_code=status, headers=_merge(headers, extra_headers)
    )


def anthropic_response(failure: Failure, extra_headers: dict[str, str] | None = None) -> JSON:
    status, *_rest, headers = _parts(failure)
    return JSON(anthropic_body(failure), status_code=status, headers=_merge(headers, extra_headers))


def _merge(first: dict[str, str], second: dict[str, str] | None) -> dict[str, str]:
    return {**(second or {}), **first}
