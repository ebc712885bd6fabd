"""POST /v1/messages: the Anthropic Messages API, metered, for any provider.

A provider that speaks Messages itself (the NativeMessages capability) gets the request
untranslated (nothing lost, the client's `anthropic-beta` header included) but for system
items inside `messages`, moved into the top-level `system`; any other gets it translated
into the OpenAI shape every provider speaks, and its answer translated back (reasoning it
reports as thinking blocks, when the client asked to see its thinking).

Every answer carries Anthropic's rate-limit headers (`anthropic_ratelimit`) besides the
gateway's own.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.catalog import Model
from bytespike.proxy import errors, pipeline, streaming, validation
from bytespike.proxy.messages_schema import MessagesRequest
from bytespike.proxy.pipeline import Answer, CallSpec, Exchange, Failure
from bytespike.proxy.streaming import Meter
from bytespike.ratelimit.base import Decision
from bytespike.translate import anthropic as translate
from bytespike.translate import messages_request, messages_system
from bytespike.upstream.base import (
    JSONObject,
    NativeMessages,
    Prepared,
    Provider,
    UpstreamFailure,
    usage_from_anthropic,
    usage_from_openai,
)


class Messages:
    """The Messages format (pipeline.Format)."""

    def parse(self, body: JSONObject) -> CallSpec:
        bound = pipeline.checked_bound(body)
        validation.check(MessagesRequest, body, validation.anthropic_param)
        return CallSpec(
            model=body["model"],
            stream=bool(body.get("stream")),
            max_tokens=body.get("max_tokens"),
            input_tokens=bound,
            body=body,
        )

    def exchange(
        self, spec: CallSpec, model: Model, provider: Provider, request: Request
    ) -> Exchange:
        if isinstance(provider, NativeMessages):
            upstream = dict(messages_system.hoisted(spec.body), model=model.upstream_model)
            prepared = Prepared(model.upstream_model, upstream, limit_at=("max_tokens",))
            beta = request.headers.get("anthropic-beta")
            return _Native(provider, prepared, model.id, beta)
        translated = translate.messages_request_to_openai(spec.body)
        translated["model"] = model.upstream_model
        thinking = messages_request.shows_thinking(spec.body)
        return _Translated(provider, provider.prepare(translated), model.id, thinking)

    def error(self, failure: Failure, headers: dict[str, str] | None) -> Response:
        return errors.anthropic_response(failure, headers)


FORMAT = Messages()


def anthropic_ratelimit(request: Request, response: Response) -> Response:
    """`response` with Anthropic's rate-limit headers, from the key's limiter decision (none
    on a refusal that came before the key was known)."""
    decision = request.scope.get("state", {}).get("rate_decision")
    if isinstance(decision, Decision):
        response.headers.update(decision.anthropic_headers())
    return response


def _error_event(failure: UpstreamFailure) -> bytes:
    return streaming.event("error", errors.anthropic_body(failure))


@dataclass(slots=True)
class _Native:
    provider: NativeMessages
    request: Prepared
    model_id: str
    beta: str | None  # the client's anthropic-beta header: features it opted into

    async def complete(self, max_tokens: int) -> Answer:
        payload = self.request.limit(max_tokens).payload
        message = await self.provider.messages(payload, beta=self.beta)
        message["model"] = self.model_id
        return Answer(message, usage_from_anthropic(message.get("usage")), 0)

    def events(self, max_tokens: int) -> AsyncGenerator[tuple[str, JSONObject], None]:
        payload = self.request.limit(max_tokens).payload
        return self.provider.messages_stream(payload, beta=self.beta)

    def frames(self, item: tuple[str, JSONObject], meter: Meter) -> Iterable[bytes]:
        name, payload = item
        meter.anthropic_event(name, payload)
        if name == "message_start" and isinstance(payload.get("message"), dict):
            payload["message"]["model"] = self.model_id
        return (streaming.event(name, payload),)

    def closing(self) -> Iterable[bytes]:
        return ()

    def broken(self, failure: UpstreamFailure) -> bytes:
        return _error_event(failure)


@dataclass(slots=True)
class _Translated:
    provider: Provider
    request: Prepared
    model_id: str
    thinking: bool  # the client asked to see the model's thinking
    translator: translate.OpenAIStreamToMessages = field(init=False)

    def __post_init__(self) -> None:
        self.translator = translate.OpenAIStreamToMessages(self.model_id, thinking=self.thinking)

    async def complete(self, max_tokens: int) -> Answer:
        usage = None
        try:
            completion = await self.provider.send(self.request.limit(max_tokens))
            usage = usage_from_openai(completion.get("usage"))
            message = translate.openai_to_message(completion, self.model_id, thinking=self.thinking)
        except UpstreamFailure as failure:
            # An answer we cannot translate is a failure, but its reported usage is owed.
            failure.usage = failure.usage or usage
            raise
        return Answer(message, usage, 0)

    def events(self, max_tokens: int) -> AsyncGenerator[JSONObject, None]:
        return self.provider.send_stream(self.request.limit(max_tokens))

    def frames(self, item: Any, meter: Meter) -> Iterable[bytes]:
        meter.openai_chunk(item)
        return [streaming.event(name, data) for name, data in self.translator.feed(item)]

    def closing(self) -> Iterable[bytes]:
        return [streaming.event(name, data) for name, data in self.translator.finish()]

    def broken(self, failure: UpstreamFailure) -> bytes:
        return _error_event(failure)
