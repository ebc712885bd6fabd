"""Errors in Gemini's envelope, `{"error": {"code", "message", "status", "details"}}`
(Google's `google.rpc.Status`), on every Gemini route. `status` is the canonical name for the
HTTP status; our own error type and code travel in an `ErrorInfo` detail."""

from __future__ import annotations

from typing import Any

from bytespike.api.responses import JSON
from bytespike.proxy.errors import Failure

# Google's canonical codes by HTTP status (https://cloud.google.com/apis/design/errors).
# Money limits are 402 like on every route; Google names a billing refusal this way.
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",  # a method the path does not take
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",  # an Idempotency-Key used for another request
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def body(failure: Failure) -> dict[str, Any]:
    status = STATUSES.get(failure.status, "UNKNOWN" if failure.status < 500 else "INTERNAL")
    metadata = {"type": failure.type}
    if failure.param:
        metadata["param"] = failure.param
    reason = (failure.code or failure.type).upper()
    info = {"@type": ERROR_INFO, "reason": reason, "domain": "bytespike", "metadata": metadata}
    detail = {"code": failure.status, "message": failure.message, "status": status}
    return {"error": {**detail, "details": [info]}}


def response(failure: Failure, extra_headers: dict[str, str] | None = None) -> JSON:
    headers = {**(extra_headers or {}), **failure.headers}
    return JSON(body(failure), status_code=failure.status, headers=headers)
