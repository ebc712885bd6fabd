"""POST /v1/chat/completions: the OpenAI Chat Completions API, metered, for any provider."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api.responses import JSON
from bytespike.billing.metering import Ticket
from bytespike.errors import InvalidRequest
from bytespike.proxy import errors, pipeline, streaming
from bytespike.proxy.pipeline import Admitted, Gateway
from bytespike.upstream.base import UpstreamFailure, usage_from_openai

# Fields bytespike sets itself on the way up.
_OURS = ("max_tokens", "max_completion_tokens", "stream_options")


def _checked(body: dict[str, Any]) -> tuple[int | None, bool]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    if body.get("n") not in (None, 1):
        raise InvalidRequest("n > 1 is not supported: make one request per completion", param="n")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise InvalidRequest("max_completion_tokens must be an integer", param="max_tokens")
    return limit, bool(body.get("stream"))


async def handle(gw: Gateway, request: Request) -> Response:
    call, body = await pipeline.admit(gw, request)
    max_tokens, stream = _checked(body)
    ticket = await pipeline.reserve(gw, call, body, max_tokens)
    upstream = {k: v for k, v in body.items() if k not in _OURS}
    upstream["model"] = call.model.upstream_model
    upstream["max_completion_tokens"] = ticket.max_tokens
    if stream:
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await _stream(gw, call, ticket, upstream, body, wants_usage)
    return await _complete(gw, call, ticket, upstream, body)


async def _complete(
    gw: Gateway, call: Admitted, ticket: Ticket, upstream: dict[str, Any], body: dict[str, Any]
) -> Response:
    try:
        completion = await call.provider.complete(upstream)
    except UpstreamFailure as failure:
        await pipeline.settle_failure(gw, call, ticket, failure, stream=False)
        return errors.openai_response(failure, call.headers)
    usage = usage_from_openai(completion.get("usage"))
    if usage is None:
        choices = completion.get("choices") or ()
        written = sum(pipeline.output_bytes(c.get("message") or {}) for c in choices)
        usage = pipeline.estimated(None, body, written)
    await pipeline.settle(gw, call, ticket, usage, status="ok", http_status=200, stream=False)
    completion["model"] = call.model.id
    return JSON(completion, headers=call.headers)


async def _stream(
    gw: Gateway,
    call: Admitted,
    ticket: Ticket,
    upstream: dict[str, Any],
    body: dict[str, Any],
    wants_usage: bool,
) -> Response:
    def frames(chunk: dict[str, Any], meter: streaming.Meter) -> tuple[bytes, ...]:
        if meter.openai_chunk(chunk) and not wants_usage:
            return ()  # always asked of the upstream, passed on only when the client asked
        chunk["model"] = call.model.id
        return (streaming.data(chunk),)

    return await streaming.respond(
        gw,
        call,
        ticket,
        body,
        call.provider.stream(upstream),
        frames=frames,
        closing=lambda: (b"data: [DONE]\n\n",),
        broken=lambda failure: streaming.data(errors.openai_body(failure)),
        refused=errors.openai_response,
    )
