"""POST /v1/messages: the Anthropic Messages API, metered, for any provider.

Anthropic models get the request untranslated (nothing lost); any other provider gets it
translated into the OpenAI shape every provider speaks, and its answer translated back.
"""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api.responses import JSON
from bytespike.billing.metering import Ticket
from bytespike.errors import InvalidRequest
from bytespike.proxy import errors, pipeline, streaming
from bytespike.proxy.pipeline import Admitted, Gateway
from bytespike.translate import anthropic as translate
from bytespike.upstream.base import (
    NativeMessages,
    UpstreamFailure,
    usage_from_anthropic,
    usage_from_openai,
)


def _checked(body: dict[str, Any]) -> tuple[int | None, bool]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty array")
    limit = body.get("max_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise InvalidRequest("max_tokens: must be an integer")
    return limit, bool(body.get("stream"))


async def handle(gw: Gateway, request: Request) -> Response:
    call, body = await pipeline.admit(gw, request)
    max_tokens, stream = _checked(body)
    native = call.model.provider == "anthropic"
    # Translate before the hold, so a malformed request is refused without one.
    translated = None if native else translate.messages_request_to_openai(body)
    ticket = await pipeline.reserve(gw, call, body, max_tokens)
    if translated is None:
        upstream = dict(body, model=call.model.upstream_model, max_tokens=ticket.max_tokens)
        provider = cast(NativeMessages, call.provider)
        # Beta features the client opted into reach Anthropic; other providers have none.
        beta = request.headers.get("anthropic-beta")
        if stream:
            return await _native_stream(gw, call, ticket, provider, upstream, body, beta)
        return await _native(gw, call, ticket, provider, upstream, body, beta)
    translated["model"] = call.model.upstream_model
    translated["max_completion_tokens"] = ticket.max_tokens
    translated.pop("max_tokens", None)
    if stream:
        return await _translated_stream(gw, call, ticket, translated, body)
    return await _translated(gw, call, ticket, translated, body)


async def _failed(
    gw: Gateway, call: Admitted, ticket: Ticket, failure: UpstreamFailure
) -> Response:
    await pipeline.settle_failure(gw, call, ticket, failure, stream=False)
    return errors.anthropic_response(failure, call.headers)


async def _native(
    gw: Gateway,
    call: Admitted,
    ticket: Ticket,
    provider: NativeMessages,
    upstream: dict[str, Any],
    body: dict[str, Any],
    beta: str | None,
) -> Response:
    try:
        message = await provider.messages(upstream, beta=beta)
    except UpstreamFailure as failure:
        return await _failed(gw, call, ticket, failure)
    usage = usage_from_anthropic(message.get("usage")) or pipeline.estimated(None, body, 0)
    await pipeline.settle(gw, call, ticket, usage, status="ok", http_status=200, stream=False)
    message["model"] = call.model.id
    return JSON(message, headers=call.headers)


async def _translated(
    gw: Gateway, call: Admitted, ticket: Ticket, upstream: dict[str, Any], body: dict[str, Any]
) -> Response:
    usage = None
    try:
        completion = await call.provider.complete(upstream)
        usage = usage_from_openai(completion.get("usage"))
        message = translate.openai_to_message(completion, call.model.id)
    except UpstreamFailure as failure:
        # An answer we cannot translate is a failure, but its reported usage is still owed.
        failure.usage = failure.usage or usage
        return await _failed(gw, call, ticket, failure)
    usage = usage or pipeline.estimated(None, body, 0)
    await pipeline.settle(gw, call, ticket, usage, status="ok", http_status=200, stream=False)
    return JSON(message, headers=call.headers)


async def _native_stream(
    gw: Gateway,
    call: Admitted,
    ticket: Ticket,
    provider: NativeMessages,
    upstream: dict[str, Any],
    body: dict[str, Any],
    beta: str | None,
) -> Response:
    def frames(item: tuple[str, dict[str, Any]], meter: streaming.Meter) -> tuple[bytes, ...]:
        name, payload = item
        meter.anthropic_event(name, payload)
        if name == "message_start" and isinstance(payload.get("message"), dict):
            payload["message"]["model"] = call.model.id
        return (streaming.event(name, payload),)

    return await streaming.respond(
        gw,
        call,
        ticket,
        body,
        provider.messages_stream(upstream, beta=beta),
        frames=frames,
        closing=tuple,
        broken=_error_event,
        refused=errors.anthropic_response,
    )


async def _translated_stream(
    gw: Gateway, call: Admitted, ticket: Ticket, upstream: dict[str, Any], body: dict[str, Any]
) -> Response:
    translator = translate.OpenAIStreamToMessages(call.model.id)

    def frames(chunk: dict[str, Any], meter: streaming.Meter) -> list[bytes]:
        meter.openai_chunk(chunk)
        return [streaming.event(name, payload) for name, payload in translator.feed(chunk)]

    return await streaming.respond(
        gw,
        call,
        ticket,
        body,
        call.provider.stream(upstream),
        frames=frames,
        closing=lambda: [streaming.event(name, data) for name, data in translator.finish()],
        broken=_error_event,
        refused=errors.anthropic_response,
    )


def _error_event(failure: UpstreamFailure) -> bytes:
    return streaming.event("error", errors.anthropic_body(failure))
