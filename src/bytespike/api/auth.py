"""Who is calling: the key from `Authorization: Bearer` or `x-api-key` (on Gemini's routes
also `x-goog-api-key` or `?key=`, as Google's SDKs send it), then the gate every
key-authenticated route passes: resolve the key (401), count it against its limit (429),
refuse keys of paused orgs (403)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Depends
from starlette.requests import Request

from bytespike.context import Context
from bytespike.errors import AuthenticationError, PermissionDenied, RateLimited
from bytespike.keys import service as keys
from bytespike.keys.repo import KeyRecord
from bytespike.ratelimit.base import RateLimiter

# Far longer than any real key; anything longer is garbage and is not even hashed.
_MAX_CREDENTIAL = 256
# Where Google's ways of sending a key are taken: Gemini's routes (proxy/gemini_routes.py).
# A key in a query string ends up in proxies' access logs, so nowhere else.
_GOOGLE_PATHS = ("/v1beta/models", "/v1/models")


@dataclass(frozen=True, slots=True)
class Caller:
    key: KeyRecord
    rate_headers: dict[str, str]


def presented_key(request: Request) -> str:
    """The key the client sent, or 401 explaining what is wrong with the headers."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return _bounded(credential.strip())
    api_key = request.headers.get("x-api-key")
    if api_key is not None and api_key.strip():
        return _bounded(api_key.strip())
    if request.url.path.startswith(_GOOGLE_PATHS):
        google = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if google is not None and google.strip():
            return _bounded(google.strip())
    if authorization is not None:
        raise AuthenticationError("Authorization header must be 'Bearer <API key>'")
    raise AuthenticationError(
        "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
    )


def _bounded(credential: str) -> str:
    if len(credential) > _MAX_CREDENTIAL:
        raise AuthenticationError("invalid API key")
    return credential


async def gate(request: Request, ctx: Context, limiter: RateLimiter) -> Caller:
    key = await keys.resolve(ctx, presented_key(request))
    return Caller(key=key, rate_headers=await admit(request, key, limiter))


async def admit(request: Request, key: KeyRecord, limiter: RateLimiter) -> dict[str, str]:
    """Count a resolved key against its limit (429), refuse a paused org's key (403); returns
    the rate-limit headers every answer carries."""
    decision = await limiter.hit(f"key:{key.id}", key.rate_limit)
    headers = decision.headers()
    # For routes that tell it in their provider's own words (proxy/messages.py), refusals too.
    request.scope.setdefault("state", {})["rate_decision"] = decision
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {key.rate_limit} requests per minute reached; "
            f"retry after {decision.reset_seconds}s",
            headers=headers,
        )
    if key.org_paused:
        raise PermissionDenied("this key's org is paused", headers=headers)
    state = request.scope.setdefault("state", {})
    state["key_id"] = key.id
    state["rate_headers"] = headers  # for the model APIs' error answers (proxy/routes.py)
    return headers


def require_admin_token(request: Request, expected: str | None) -> None:
    """401 unless the request carries `Authorization: Bearer <admin token>`."""
    if not expected:
        raise AuthenticationError("the admin API is disabled: set BYTESPIKE_ADMIN_TOKEN")
    if not bearer_matches(request, expected):
        raise AuthenticationError("invalid admin token")


def bearer_matches(request: Request, expected: str) -> bool:
    """The request carries `Authorization: Bearer <expected>` (compared in constant time)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode("utf-8", "replace"), expected.encode()
    )


async def current_caller(request: Request) -> Caller:
    """`gate` as a dependency. api/guard.py has normally passed the gate already, before
    reading the body, and left the caller in the request's state."""
    caller = request.scope.get("state", {}).get("caller")
    if isinstance(caller, Caller):
        return caller
    return await gate(request, request.app.state.ctx, request.app.state.limiter)


KeyHolder = Depends(current_caller)
