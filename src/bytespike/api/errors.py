"""Every failure leaves as {"error": {"type", "message"}} with its status, never a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from bytespike.api import paths
from bytespike.api.responses import JSON
from bytespike.errors import STATUS_TYPES, BytespikeError
from bytespike.proxy import errors as model_api
from bytespike.proxy import gemini_errors
from bytespike.proxy.errors import Failure

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    type: str
    message: str
    code: str | None = None


class ErrorResponse(BaseModel):
    """The envelope every error travels in (documented in the OpenAPI schema)."""

    error: ErrorDetail


# The failures every key-authenticated route shares, for the OpenAPI document.
KEY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, malformed, unknown or revoked key"},
    403: {"model": ErrorResponse, "description": "Key created in a paused org"},
    429: {"model": ErrorResponse, "description": "Per-minute limit spent; see Retry-After"},
}


def envelope(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": {"type": type_, "message": message}}, status_code=status, headers=headers)


async def _bytespike(_request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, BytespikeError)
    return JSON(exc.envelope(), status_code=exc.status, headers=exc.headers)


async def _validation(_request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return envelope(400, "invalid_request_error", "; ".join(problems) or "invalid request")


async def _http(request: Request, exc: Exception) -> JSON:
    """The router's own answers (no such path, or not that method): in the envelope of the
    client API the path belongs to, since that client's SDK parses the error."""
    assert isinstance(exc, HTTPException)
    type_ = STATUS_TYPES.get(exc.status_code, "api_error")
    headers = dict(exc.headers or {})
    render = _model_api_envelope(request.url.path)
    if render is None:
        return envelope(exc.status_code, type_, str(exc.detail), headers)
    failure = BytespikeError(str(exc.detail), headers=headers)
    failure.status, failure.type = exc.status_code, type_
    return render(failure, None)


def _model_api_envelope(path: str) -> Callable[[Failure, None], JSON] | None:
    """The error envelope of the client API a path belongs to (None: not a model API's)."""
    api = paths.client_api(path)
    return None if api is None else _ENVELOPES[api]


_ENVELOPES: dict[paths.ClientApi, Callable[[Failure, None], JSON]] = {
    "gemini": gemini_errors.response,
    "anthropic": model_api.anthropic_response,
    "openai": model_api.openai_response,
}


async def _unexpected(request: Request, exc: Exception) -> JSON:
    log.exception("unhandled error", extra={"path": request.url.path})
    return envelope(500, "api_error", "internal error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(BytespikeError, _bytespike)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
