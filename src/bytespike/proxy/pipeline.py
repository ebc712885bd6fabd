"""One metered call, top to bottom: authenticate → rate limit → model on the roster →
cap and hold (one transaction) → upstream → settle (or release) and record the usage.

The client formats (proxy/chat.py for OpenAI, proxy/messages.py for Anthropic) call these
steps in this order; nothing reaches an upstream without a hold placed first.

Failure policy: any refusal before the hold costs nothing; after the hold, every way out
(answer, upstream failure, client gone, crash) settles or releases it (a crash leaves it to
expire back into `available`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from bytespike.api import auth
from bytespike.billing import metering, pricing
from bytespike.billing.metering import HoldRequest, KeyRevoked, Outcome, Ticket
from bytespike.catalog import Model
from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.errors import InvalidRequest, ModelNotFound, PermissionDenied
from bytespike.keys.cache import CachedKey, KeyCache
from bytespike.ratelimit.base import RateLimiter
from bytespike.upstream.base import (
    Provider,
    UpstreamFailure,
    Usage,
)
from bytespike.upstream.registry import Providers

MAX_BODY_BYTES = 32 * 1024 * 1024  # images inline as base64 make big bodies legitimate


@dataclass
class Gateway:
    """What the metered routes share, built once by create_app."""

    ctx: Context
    limiter: RateLimiter
    keys: KeyCache
    providers: Providers
    writes: GroupCommit


@dataclass(frozen=True, slots=True)
class Admitted:
    key: CachedKey
    model: Model
    provider: Provider
    headers: dict[str, str]  # rate-limit headers, sent on every answer
    started: float


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


async def admit(gw: Gateway, request: Request) -> tuple[Admitted, dict[str, Any]]:
    """401 → 429 → 403 (paused), before the body is even read; then 400 (body), 404
    (unknown model), 403 (not on the key's roster). Returns the call and its body."""
    started = time.perf_counter()
    key = await gw.keys.resolve(auth.presented_key(request))
    headers = await auth.admit(request, key.record, gw.limiter)
    body = await read_body(request)
    model = _model(gw, key, body)
    provider = gw.providers.for_model(model)
    call = Admitted(key=key, model=model, provider=provider, headers=headers, started=started)
    return call, body


def _model(gw: Gateway, key: CachedKey, body: dict[str, Any]) -> Model:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("'model' is required and must be a string")
    model = gw.ctx.catalog.get(name)
    if model is None:
        raise ModelNotFound(f"the model {name!r} does not exist")
    if not key.may_call(model.id):
        message = f"this key may not call {model.id!r}; its models: {', '.join(key.roster)}"
        raise PermissionDenied(message, code="model_not_allowed")
    return model


async def reserve(
    gw: Gateway, call: Admitted, body: dict[str, Any], max_tokens: int | None
) -> Ticket:
    """The hold for this call, or 402 (cap or balance), 401/403 if the key died meanwhile."""
    if max_tokens is not None and max_tokens < 1:
        raise InvalidRequest("max_tokens must be at least 1")
    record = call.key.record

    hold = HoldRequest(
        key_id=record.id,
        wallet_id=call.key.wallet_id,
        model=call.model,
        quota_reset=record.quota_reset,
        capped=call.key.cap_for(call.model.id) is not None,
        input_tokens=pricing.input_bound(body),  # here, not in the writer thread
        max_tokens=max_tokens,
        now=gw.ctx.clock.now(),
        ttl=gw.ctx.hold_ttl,
    )

    async def place(conn: Any) -> Ticket:
        return await metering.reserve(conn, hold)

    try:
        fused = metering.fused_reserve(hold)
        return await gw.writes.run(place, order=call.key.wallet_id, fused=fused)
    except KeyRevoked:
        gw.keys.forget(call.key.digest)
        raise


async def settle(
    gw: Gateway,
    call: Admitted,
    ticket: Ticket,
    usage: Usage | None,
    *,
    status: str,
    http_status: int,
    stream: bool,
) -> int:
    outcome = Outcome(
        status=status,
        http_status=http_status,
        stream=stream,
        latency_ms=int((time.perf_counter() - call.started) * 1000),
        provider=call.provider.name,
    )
    now = gw.ctx.clock.now()

    async def write(conn: Any) -> int:
        return await metering.settle(conn, ticket, usage, outcome, now=now)

    fused = metering.fused_settle(ticket, usage, outcome, now=now)
    return await gw.writes.run(write, order=ticket.wallet_id, fused=fused)


async def settle_failure(
    gw: Gateway, call: Admitted, ticket: Ticket, failure: UpstreamFailure, *, stream: bool
) -> int:
    """Settle a call the upstream failed: only what it reported, else release the hold."""
    return await settle(
        gw,
        call,
        ticket,
        failure.usage,
        status=failure.usage_status,
        http_status=failure.status,
        stream=stream,
    )


def output_bytes(part: dict[str, Any]) -> int:
    """UTF-8 bytes of what a message or a stream delta says: its text and tool arguments
    (the measure `estimated` turns into output tokens)."""
    pieces = [part.get("content")]
    for call in part.get("tool_calls") or ():
        pieces.append((call.get("function") or {}).get("arguments"))
    return sum(len(piece.encode()) for piece in pieces if isinstance(piece, str))


def estimated(usage: Usage | None, body: dict[str, Any], output_bytes: int) -> Usage:
    """Usage for a call the upstream never reported on (the client left mid-stream, or a
    server that sends no usage): reported input if any, else a quarter of the input bound;
    a token per four bytes of output streamed."""
    input_tokens = usage.input_tokens if usage else math.ceil(pricing.input_bound(body) / 4)
    cached = usage.cached_tokens if usage else 0
    output = max(usage.output_tokens if usage else 0, math.ceil(output_bytes / 4))
    return Usage(input_tokens=input_tokens, output_tokens=output, cached_tokens=cached)
