"""One metered call, top to bottom, for every client API: `run` sequences admit → read and
validate the body → route → translate → hold → send → settle (or release).

Each client API is a `Format` (proxy/chat.py for OpenAI Chat Completions, proxy/messages.py
for Anthropic Messages, proxy/responses.py for OpenAI Responses...): it parses and checks
the body into a `CallSpec`, translates it into an `Exchange` for each deployment the call
may try (proxy/fallback.py), and renders errors in its own envelope. A format that
continues stored conversations (`Recalling`) adds them to the spec before the hold; an
exchange that stores its result (`Keeping`) does so once the call has settled. A request
with an `Idempotency-Key` claims it just before the hold (idempotency/claims.py): a retry
of an answered one gets that answer again instead, billed once. Each call's `Watch`
(metrics/watch.py) is told where it is in those steps, for its metrics and spans.

Failure policy: any refusal before the hold costs nothing, and every way a body can be
wrong is found before it: the body is parsed, checked and translated first. After the
hold only the upstream call can fail, and every way out (answer, upstream failure, client
gone, a bug, a stopping server's cut) settles or releases the hold on the spot; a crash
leaves it to expire back into `available`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard, runtime_checkable

from starlette.requests import Request
from starlette.responses import Response

from bytespike import uniques
from bytespike.api import auth, bodies
from bytespike.api.responses import JSON
from bytespike.billing import holds, metering, pricing
from bytespike.billing.metering import HoldRequest, KeyChanged, KeyRevoked, Outcome, Ticket
from bytespike.catalog import Model
from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.errors import (
    BytespikeError,
    InternalError,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    RateLimited,
)
from bytespike.idempotency import claims
from bytespike.keys.cache import CachedKey, KeyCache
from bytespike.metrics.families import Metrics
from bytespike.metrics.watch import HOLD, SETTLE, UPSTREAM, VALIDATE, Watch
from bytespike.proxy import estimate, fallback, streaming
from bytespike.proxy.inflight import InFlight
from bytespike.proxy.streaming import Meter
from bytespike.ratelimit.base import RateLimiter
from bytespike.records import record
from bytespike.upstream.base import JSONObject, Provider, UpstreamFailure, Usage
from bytespike.upstream.deployments import Attempts
from bytespike.upstream.registry import Providers
from bytespike.usage import refusals

log = logging.getLogger(__name__)

Failure = BytespikeError | UpstreamFailure


@dataclass
class Gateway:
    """What the metered routes share, built once by create_app."""

    ctx: Context
    limiter: RateLimiter
    keys: KeyCache
    providers: Providers
    writes: GroupCommit
    # Calls not yet settled, streams included: a stopping server waits for them (app.py).
    calls: InFlight = field(default_factory=InFlight)
    metrics: Metrics = field(default_factory=Metrics)


@record
class CallSpec:
    """A checked request: what it asks for and the most it may cost."""

    model: str
    stream: bool
    max_tokens: int | None  # the client's output limit, if it gave one
    input_tokens: int  # upper bound of the prompt, over every byte the upstream may bill
    body: JSONObject  # as the client sent it
    # Inputs the body names without carrying them (a file by URI, a cached prompt): each may
    # be as long as the model's context window, which the hold adds for each.
    referenced: int = 0


@record
class Answer:
    """A whole answer in the client's format, with the usage it reported (if any)."""

    body: JSONObject
    usage: Usage | None
    output_bytes: int  # what it says, for an estimate when no usage was reported


class Exchange(streaming.Framer[Any], Protocol):
    """One call, translated for its provider; made before the hold, sent after it. As a
    Framer it also turns the upstream's stream items into the client's bytes."""

    async def complete(self, max_tokens: int) -> Answer: ...

    def events(self, max_tokens: int) -> AsyncGenerator[Any, None]: ...


class Format(Protocol):
    """A client API: its body's checks, its translations, its error envelope. One for
    embedding models says so with `kind = "embedding"` (check_kind)."""

    def parse(self, body: JSONObject) -> CallSpec:
        """The call the body asks for, or InvalidRequest naming the field at fault."""
        ...

    def exchange(
        self, spec: CallSpec, model: Model, provider: Provider, request: Request
    ) -> Exchange:
        """The call translated for `provider`, or InvalidRequest if it cannot take it."""
        ...

    def error(self, failure: Failure, headers: dict[str, str] | None) -> Response: ...


@runtime_checkable
class Recalling(Protocol):
    """Optional, on a Format: a request may continue a conversation the gateway stored
    (the Responses API's previous_response_id)."""

    async def recall(self, gw: Gateway, key: CachedKey, spec: CallSpec) -> CallSpec:
        """`spec` with the stored conversation in its body and its bound, or 404."""
        ...


class Keeping(Protocol):
    """Optional, on an Exchange: something it stores once the call has settled (a stored
    response)."""

    async def keep(self, gw: Gateway, key: CachedKey) -> None: ...


def _recalls(fmt: Format) -> TypeGuard[Recalling]:
    return _implements(type(fmt), Recalling)


@functools.cache
def _implements(cls: type, protocol: type) -> bool:
    # Per class, once: isinstance() against a Protocol walks its members every time.
    return issubclass(cls, protocol)


@record
class Admitted:
    key: CachedKey
    model: Model
    attempts: Attempts  # the deployments tried so far (proxy/fallback.py)
    headers: dict[str, str]  # rate-limit headers, sent on every answer
    started: float
    watch: Watch  # its timeline, for its metrics and spans
    request_id: str | None = None  # recorded on the usage record (bytespike/request_ids.py)
    claim: claims.Claim = claims.NONE  # its Idempotency-Key's, told how it settled


async def run(gw: Gateway, fmt: Format, request: Request, *, model: str | None = None) -> Response:
    """A metered call in `fmt`, its refusals in `fmt`'s envelope; once the key has been
    counted against its rate limit, every answer carries the rate-limit headers. `model`:
    the model the path names (Gemini's `models/{model}:method`), else the body's."""
    watch = gw.metrics.watch(request)  # the call's metrics, and its spans when tracing is on
    with gw.calls:
        try:
            response = await _run(gw, fmt, request, model, watch)
        except BytespikeError as exc:
            watch.reason = _reason(exc)
            await _count_refusal(gw, request, exc)
            response = fmt.error(exc, request.scope.get("state", {}).get("rate_headers"))
        except Exception:
            log.exception("metered call failed", extra={"path": request.url.path})
            watch.reason = "internal_error"
            failure = InternalError("internal error; it has been logged")
            response = fmt.error(failure, request.scope.get("state", {}).get("rate_headers"))
        watch.answered(response)
        return response


async def _run(
    gw: Gateway, fmt: Format, request: Request, named: str | None, watch: Watch
) -> Response:
    started = time.perf_counter()
    key = await admit(gw, request)  # 401 → 429 → 403, before the body is read
    watch.step(VALIDATE)
    raw = await read_raw(gw, request)  # 413, 408
    body = bodies.json_object(raw)  # 400: not a JSON object
    model = route(gw, key, body.get("model") if named is None else named)  # 400, 404, 403
    watch.model = model.id
    check_kind(fmt, model)  # 400: an embedding model on a chat route, or the reverse
    spec = fmt.parse(body)  # 400 naming the field at fault
    if _recalls(fmt):
        spec = await fmt.recall(gw, key, spec)  # 404: no such stored conversation of theirs
    if spec.referenced:
        bound = spec.input_tokens + spec.referenced * model.context_tokens
        spec = dataclasses.replace(spec, input_tokens=bound)
    plan = gw.providers.plan(model)  # its deployments, in the order this call tries them
    exchange = fallback.exchange(fmt, spec, plan, request)  # 400: translated before the hold
    claim = await claims.claim(gw.ctx, gw.writes, key, request, raw)  # 400, 409, 422
    if claim.replay is not None:
        return claim.replay  # the first answer to this Idempotency-Key, not billed again
    headers = request.scope["state"]["rate_headers"]
    call = Admitted(
        key=key,
        model=model,
        attempts=exchange.attempts,
        headers=headers,
        started=started,
        watch=watch,
        request_id=request.scope["state"].get("request_id"),
        claim=claim,
    )
    async with claim:  # kept with its answer once billed, else given back
        watch.step(HOLD)
        ticket = await reserve(gw, call, spec)  # 402
        watch.step(UPSTREAM)
        try:
            return await claim.recorded(await send(gw, fmt, call, ticket, spec, exchange))
        except BaseException:
            await _release_quietly(gw, ticket)
            raise


async def admit(gw: Gateway, request: Request) -> CachedKey:
    """The caller's key (401; 403 if its user is suspended), counted against its limit
    (429), not of a paused org (403)."""
    secret = auth.presented_key(request)
    asked = gw.keys.mark()  # a read begun from here on is live for this call
    key = await gw.keys.resolve(secret)
    if key.record.org_paused:
        # The cached record may predate a resume: only a live read may refuse.
        key = await gw.keys.reload(key.digest, since=asked)
    request.scope.setdefault("state", {})["metered_key"] = key  # its refusals are counted
    try:
        await auth.admit(request, key.record, gw.limiter)
    except RateLimited:
        # The cached limit may predate a raise (`keys update`): only a live one may refuse.
        fresh = await gw.keys.reload(key.digest, since=asked)
        if fresh.record.rate_limit == key.record.rate_limit:
            raise
        key = fresh
        await auth.admit(request, key.record, gw.limiter)
    return key


async def read_body(gw: Gateway, request: Request) -> JSONObject:
    return bodies.json_object(await read_raw(gw, request))


async def read_raw(gw: Gateway, request: Request) -> bytes:
    settings = gw.ctx.settings
    return await bodies.read(
        request, limit=settings.model_body_limit_bytes, within=settings.body_timeout_seconds
    )


def route(gw: Gateway, key: CachedKey, name: Any) -> Model:
    if not isinstance(name, str) or not name:
        raise InvalidRequest("model: a model id is required", param="model")
    model = gw.ctx.catalog.get(name)
    if model is None:
        raise ModelNotFound(f"the model {name!r} does not exist", param="model")
    if not key.may_call(model.id):
        message = f"this key may not call {model.id!r}; its models: {', '.join(key.roster)}"
        raise PermissionDenied(message, code="model_not_allowed", param="model")
    return model


def check_kind(fmt: Format, model: Model) -> None:
    """400 unless the model is of the kind the format serves: a format's `kind` attribute,
    "chat" where it has none (catalog.KINDS)."""
    if model.kind != getattr(fmt, "kind", "chat"):
        message = f"the model {model.id!r} is {_KINDS[model.kind]}"
        raise InvalidRequest(message, param="model", code="model_not_supported")


_KINDS = {
    "chat": "a chat model: it does not embed",
    "embedding": "an embedding model: call it on /v1/embeddings or Gemini's embedContent",
}


def checked_bound(body: JSONObject) -> int:
    """The input bound of a body, or a 400 for one nested past what any request needs."""
    try:
        return pricing.input_bound(body)
    except pricing.TooDeep as exc:
        raise InvalidRequest(str(exc)) from None


async def reserve(gw: Gateway, call: Admitted, spec: CallSpec) -> Ticket:
    """The hold for this call, or 402 (cap, budget or balance), 401/403 if the key died
    meanwhile. A key changed since it was read (`KeyChanged`) is read anew, the call checked
    against it again (its roster may have lost the model) and the hold tried again."""
    for _ in range(_KEY_CHANGES):
        try:
            return await _place(gw, call, spec)
        except KeyChanged as changed:
            # 401, 403: refused as it is now. Calls that met the change at once share a read.
            key = await gw.keys.newer(call.key.digest, changed.version)
            call = dataclasses.replace(call, key=key, model=route(gw, key, call.model.id))
        except (KeyRevoked, PermissionDenied):
            gw.keys.forget(call.key.digest)  # revoked or paused: the next request reads it anew
            raise
    return await _place(gw, call, spec)


_KEY_CHANGES = 3  # a key changing under every attempt is an operator loop; then it says so


async def _place(gw: Gateway, call: Admitted, spec: CallSpec) -> Ticket:
    record = call.key.record
    hold = HoldRequest(
        key_id=record.id,
        wallet_id=call.key.wallet_id,
        model=call.model,
        quota_reset=record.quota_reset,
        capped=call.key.cap_for(call.model.id) is not None,
        input_tokens=spec.input_tokens,
        max_tokens=spec.max_tokens,
        now=gw.ctx.clock.now(),
        ttl=gw.ctx.hold_ttl,
        version=record.version,
        budgeted=record.budgeted,
        budget_reset=record.budget_reset,
        reach=pricing.reach(spec.body),  # web searches, 1-hour cache writes: the hold covers them
        token=uniques.bits(63),  # finds this hold again if its batch is run again
    )

    async def place(conn: Any) -> metering.Reservation:
        return await metering.reserve(conn, hold)

    fused = metering.fused_reserve(hold) if gw.writes.fuses else None
    placed = await gw.writes.run(place, order=call.key.wallet_id, fused=fused)
    return metering.ticket_or_raise(placed)


async def send(
    gw: Gateway,
    fmt: Format,
    call: Admitted,
    ticket: Ticket,
    spec: CallSpec,
    exchange: fallback.Fallback,
) -> Response:
    """The upstream call and its settlement: the exact usage, or an estimate, or nothing."""
    if spec.stream:
        return await streaming.respond(
            exchange,
            exchange.events(ticket.max_tokens),
            settle=lambda meter: _settle_stream(gw, call, ticket, spec, meter, exchange),
            refused=lambda failure: _refused(gw, fmt, call, ticket, failure),
            headers=call.headers,
            calls=gw.calls,
        )
    try:
        answer = await exchange.complete(ticket.max_tokens)
    except UpstreamFailure as failure:
        return await _refused(gw, fmt, call, ticket, failure, stream=False)
    usage = answer.usage or estimate.usage(None, spec.input_tokens, answer.output_bytes)
    await settle(gw, call, ticket, usage, status="ok", http_status=200, stream=False)
    await _keep(gw, call, exchange)
    return JSON(answer.body, headers=call.headers)


async def _refused(
    gw: Gateway,
    fmt: Format,
    call: Admitted,
    ticket: Ticket,
    failure: UpstreamFailure,
    *,
    stream: bool = True,
) -> Response:
    """The upstream failed before answering: bill only what it reported, else release."""
    status, code = failure.usage_status, failure.status
    await settle(gw, call, ticket, failure.usage, status=status, http_status=code, stream=stream)
    return fmt.error(failure, call.headers)


async def _settle_stream(
    gw: Gateway,
    call: Admitted,
    ticket: Ticket,
    spec: CallSpec,
    m: Meter,
    exchange: fallback.Fallback,
) -> int:
    """How a stream settles: reported usage; if the client left, or the upstream finished
    without reporting, an estimate from what was streamed."""
    usage = m.usage
    if m.status == "client_closed" or (m.status == "ok" and not m.final_usage):
        usage = estimate.usage(usage, spec.input_tokens, m.output_bytes)
    charged = await settle(
        gw, call, ticket, usage, status=m.status, http_status=m.http_status, stream=True
    )
    await _keep(gw, call, exchange)
    return charged


async def _keep(gw: Gateway, call: Admitted, exchange: fallback.Fallback) -> None:
    """What the exchange stores (if it is `Keeping`), once its call has settled. A failure
    here loses the copy, never the answer or the money: it is logged."""
    try:
        await exchange.keep(gw, call.key)
    except Exception:
        log.warning("a settled call's result was not stored", exc_info=True)


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
    call.watch.step(SETTLE)
    outcome = Outcome(
        status=status,
        http_status=http_status,
        stream=stream,
        latency_ms=int((time.perf_counter() - call.started) * 1000),
        provider=call.attempts.provider,
        attempts=tuple(call.attempts.made),
        request_id=call.request_id,
    )
    now = gw.ctx.clock.now()

    async def write(conn: Any) -> int:
        return await metering.settle(conn, ticket, usage, outcome, now=now)

    fused = metering.fused_settle(ticket, usage, outcome, now=now) if gw.writes.fuses else None
    charged = await gw.writes.run(write, order=ticket.wallet_id, fused=fused)
    await call.claim.settled(billed=usage is not None)  # what its Idempotency-Key keeps
    call.watch.settled(status, usage, charged, stream=stream, attempts=call.attempts.made)
    return charged


# A refusal's reason in the reports is its error code; these have none of their own.
_REASONS = {429: "rate_limited"}


def _reason(refusal: BytespikeError) -> str:
    return refusal.code or _REASONS.get(refusal.status, refusal.type)


async def _count_refusal(gw: Gateway, request: Request, refusal: BytespikeError) -> None:
    """Count a refused call against its key for the reports, once the key is known (a 401
    has none). Counting never changes the answer: if it fails, the refusal goes uncounted."""
    key = request.scope.get("state", {}).get("metered_key")
    if not isinstance(key, CachedKey) or refusal.status == 401:
        return
    reason = _reason(refusal)
    now = gw.ctx.clock.now()

    async def count(conn: Any) -> None:
        await refusals.count_refusal(
            conn, key_id=key.record.id, wallet_id=key.wallet_id, reason=reason, now=now
        )

    try:
        await gw.writes.run(count, order=key.wallet_id)
    except Exception:
        log.warning("refusal not counted", exc_info=True)


async def _release_quietly(gw: Gateway, ticket: Ticket) -> None:
    """After a failure nobody foresaw: give the hold back now (if it is still pending)
    rather than at its TTL. If this fails too (the database is the problem), it expires."""
    now = gw.ctx.clock.now()

    async def release(conn: Any) -> bool:
        return await holds.release(
            conn, ticket.hold_id, now=now, capped=ticket.capped, budgeted=ticket.budgeted
        )

    with contextlib.suppress(Exception):
        await gw.writes.run(release, order=ticket.wallet_id)
