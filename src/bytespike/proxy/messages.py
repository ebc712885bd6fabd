"""POST /v1/messages: the Anthropic Messages API, metered, for any provider.

Anthropic models get the request untranslated (nothing lost); any other provider gets it
translated into the OpenAI shape every provider speaks, and its answer translated back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
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
    try:
        max_tokens, stream = _checked(body)
        native = call.model.provider == "anthropic"
        # Translate before the hold, so a malformed request is refused without one.
        translated = None if native else translate.messages_request_to_openai(body)
    except InvalidRequest as exc:
        raise pipeline.with_headers(exc, call.headers) from None
    ticket = await pipeline.reserve(gw, call, body, max_tokens)
    if translated is None:
        upstream = dict(body, model=call.model.upstream_model, max_tokens=ticket.max_tokens)
        provider = cast(NativeMessages, call.provider)
        if stream:
            return await _native_stream(gw, call, ticket, provider, upstream, body)
        return await _native(gw, call, ticket, provider, upstream, body)
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
) -> Response:
    try:
        message = await provider.messages(upstream)
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
) -> Response:
    source = provider.messages_stream(upstream)
    try:
        head = await streaming.first(source)
    except UpstreamFailure as failure:
        await pipeline.settle_failure(gw, call, ticket, failure, stream=True)
        return errors.anthropic_response(failure, call.headers)
    meter = streaming.Meter()

    async def events() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(source):
            try:
                async for name, payload in streaming.chain(head, source):
                    meter.anthropic_event(name, payload)
                    meter.usage = translate.fold_stream_usage(name, payload, meter.usage)
                    if name == "message_delta" and payload.get("usage"):
                        meter.final_usage = True
                    if name == "message_start" and isinstance(payload.get("message"), dict):
                        payload["message"]["model"] = call.model.id
                    yield streaming.event(name, payload)
            except UpstreamFailure as failure:
                _broke(meter, failure)
                yield streaming.event("error", errors.anthropic_body(failure))
                return
        meter.status = "ok"

    return streaming.metered(
        events(), meter, streaming.settler(gw, call, ticket, body), call.headers
    )


async def _translated_stream(
    gw: Gateway, call: Admitted, ticket: Ticket, upstream: dict[str, Any], body: dict[str, Any]
) -> Response:
    chunks = call.provider.stream(upstream)
    try:
        head = await streaming.first(chunks)
    except UpstreamFailure as failure:
        await pipeline.settle_failure(gw, call, ticket, failure, stream=True)
        return errors.anthropic_response(failure, call.headers)
    meter = streaming.Meter()
    translator = translate.OpenAIStreamToMessages(call.model.id)

    async def events() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(chunks):
            try:
                async for chunk in streaming.chain(head, chunks):
                    meter.openai_chunk(chunk)
                    usage = usage_from_openai(chunk.get("usage"))
                    if usage is not None:
                        meter.usage, meter.final_usage = usage, True
                    for name, payload in translator.feed(chunk):
                        yield streaming.event(name, payload)
            except UpstreamFailure as failure:
                _broke(meter, failure)
                yield streaming.event("error", errors.anthropic_body(failure))
                return
        meter.status = "ok"
        for name, payload in translator.finish():
            yield streaming.event(name, payload)

    return streaming.metered(
        events(), meter, streaming.settler(gw, call, ticket, body), call.headers
    )


def _broke(meter: streaming.Meter, failure: UpstreamFailure) -> None:
    meter.usage = failure.usage or meter.usage
    meter.status = pipeline.failure_status(failure)
    meter.http_status = failure.status
