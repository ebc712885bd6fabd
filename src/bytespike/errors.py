"""Errors a user can see, and the one envelope they travel in: {"error": {"type", "message"}}.

Services raise these; the HTTP layer renders them, the CLI prints their message.
"""

from __future__ import annotations

# The envelope's error.type for an HTTP status, where nothing more precise is known.
STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class BytespikeError(Exception):
    """Base of every error a caller is told about; `type` is the envelope's error.type."""

    status = 400
    type = "invalid_request_error"
    code: str | None = None  # a subclass's default machine-readable code

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else type(self).code
        self.headers = headers or {}
        self.param = param  # the request field at fault, for OpenAI-format errors

    def envelope(self) -> dict[str, dict[str, str | None]]:
        body: dict[str, str | None] = {"type": self.type, "message": self.message}
        if self.code is not None:
            body["code"] = self.code
        return {"error": body}


class InvalidRequest(BytespikeError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(BytespikeError):
    status = 401
    type = "authentication_error"


class PermissionDenied(BytespikeError):
    status = 403
    type = "permission_error"


class NotFound(BytespikeError):
    status = 404
    type = "not_found_error"


class PayloadTooLarge(BytespikeError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RequestTimeout(BytespikeError):
    """The client did not send its whole body in time."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class InternalError(BytespikeError):
    """A bug, never the client's input: it is logged, and the client gets no detail."""

    status = 500
    type = "api_error"


class Conflict(BytespikeError):
    status = 409
    type = "conflict_error"


class InsufficientBalance(BytespikeError):
    """402: SDKs do not retry it, which is right for money limits."""

    status = 402
    type = "billing_error"
    code = "insufficient_balance"

    def __init__(self, message: str = "insufficient balance", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RateLimited(BytespikeError):
    status = 429
    type = "rate_limit_error"


class ServiceUnavailable(BytespikeError):
    """503 with Retry-After: the database cannot be reached or takes no work now
    (db/outage.py). Nothing was done; the same request may simply be sent again."""

    status = 503
    type = "api_error"
    code = "service_unavailable"
    # Long enough for a restart or a failover to make progress, short enough for the SDKs,
    # which honour Retry-After on their automatic retries of a 503.
    RETRY_AFTER_SECONDS = 5

    def __init__(self, message: str = "database unavailable; retry shortly") -> None:
        super().__init__(message, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


class QuotaCapReached(BytespikeError):
    """402 like every money limit: the key's spend cap on this model is used up."""

    status = 402
    type = "billing_error"
    code = "quota_cap_reached"


class KeyBudgetReached(BytespikeError):
    """402 like every money limit: the key's total budget (over every model) is used up."""

    status = 402
    type = "billing_error"
    code = "key_budget_reached"


class ModelNotFound(BytespikeError):
    status = 404
    type = "not_found_error"
    code = "model_not_found"
