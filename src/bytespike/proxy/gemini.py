"""POST /v1beta/models/{model}:generateContent and :streamGenerateContent (the same under
/v1/): Gemini's API, metered, for any chat model on the key's roster.

A provider that speaks Gemini itself (the NativeGemini capability) gets the request
untranslated, nothing lost; any other gets it translated into the OpenAI shape every
provider speaks (translate/generate_request.py), and its answer and stream translated back
(translate/generate_response.py). `streamGenerateContent?alt=sse` answers Server-Sent
Events; without `alt=sse`, one JSON array streamed element by element, as Google does.
Errors come in Gemini's envelope (proxy/gemini_errors.py), a stream's too.

The hold bounds every byte of the body (pricing.input_bound), plus a message's overhead per
content and an image's worth per inline media part; a file by URI or a `cachedContent` is
input the body does not carry, bounded by the model's context window (CallSpec.referenced).
Usage is Gemini's `usageMetadata` (upstream/gemini_response.py maps its classes), and its
grounding's search queries.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field

import orjson
from starlette.requests import Request
from starlette.responses import Response

from bytespike.billing.pricing import IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS
from bytespike.catalog import Model
from bytespike.proxy import estimate, gemini_errors, gemini_schema, pipeline, validation
from bytespike.proxy.pipeline import Answer, CallSpec, Exchange, Failure
from bytespike.proxy.streaming import Meter
from bytespike.translate.generate_request import generate_request_to_openai
from bytespike.translate.generate_response import ChunksToGenerate, completion_to_generate
from bytespike.upstream import gemini_response
from bytespike.upstream.base import (
    JSONObject,
    Prepared,
    Provider,
    UpstreamFailure,
    usage_from_openai,
)
from bytespike.upstream.gemini import LIMIT_AT, NativeGemini, finished

JSON_ARRAY = "application/json; charset=UTF-8"  # a stream without alt=sse


@dataclass(frozen=True, slots=True)
class GenerateContent:
    """Gemini's generateContent API (pipeline.Format); `stream` for streamGenerateContent,
    `sse` for its `alt=sse` form."""

    stream: bool = False
    sse: bool = False

    def parse(self, body: JSONObject) -> CallSpec:
        bound = pipeline.checked_bound(body)
        body = gemini_schema.camel_case(body)
        validation.check(gemini_schema.GenerateContentRequest, body, validation.openai_param)
        config = body.get("generationConfig") or {}
        return CallSpec(
            model=str(body.get("model") or ""),  # the path names it (pipeline.run's `model`)
            stream=self.stream,
            max_tokens=config.get("maxOutputTokens"),
            input_tokens=bound + overhead(body),
            body=body,
            referenced=referenced(body),
        )

    def exchange(
        self, spec: CallSpec, model: Model, provider: Provider, request: Request
    ) -> Exchange:
        frames = Frames(self.sse)
        if isinstance(provider, NativeGemini):
            payload = {k: v for k, v in spec.body.items() if k != "model"}
            payload["generationConfig"] = dict(payload.get("generationConfig") or {})
            prepared = Prepared(model.upstream_model, payload, limit_at=LIMIT_AT)
            return _Native(provider, prepared, frames)
        translated = generate_request_to_openai(spec.body)  # 400: what it cannot express
        translated |= {"model": model.upstream_model, "stream": spec.stream}
        return _Translated(provider, provider.prepare(translated), model.id, frames)

    def error(self, failure: Failure, headers: dict[str, str] | None) -> Response:
        return gemini_errors.response(failure, headers)


FORMAT = GenerateContent()
STREAM = GenerateContent(stream=True)
STREAM_SSE = GenerateContent(stream=True, sse=True)


def contents(body: JSONObject) -> list[JSONObject]:
    """The request's contents, its system instruction first if it has one."""
    system = body.get("systemInstruction")
    return [system, *body["contents"]] if system else list(body["contents"])


def overhead(body: JSONObject) -> int:
    """Tokens a request may be billed beyond its bytes: each content's framing, and each
    inline media part's tokens (an image of a few bytes may still cost a whole image)."""
    found = contents(body)
    media = sum(1 for c in found for p in c["parts"] if p.get("inlineData"))
    return MESSAGE_OVERHEAD_TOKENS * len(found) + IMAGE_TOKENS * media


def referenced(body: JSONObject) -> int:
    """1 if the request names input it does not carry (a file by URI, a cached prompt): the
    whole prompt, whatever it names, fits the model's context window."""
    files = any(p.get("fileData") for c in contents(body) for p in c["parts"])
    return int(files or bool(body.get("cachedContent")))


def output_bytes(response: JSONObject) -> int:
    """UTF-8 bytes of what a GenerateContentResponse says: its text and call arguments."""
    total = 0
    for candidate in response.get("candidates") or ():
        for part in (candidate.get("content") or {}).get("parts") or ():
            if isinstance(part.get("text"), str) and not part.get("thought"):
                total += len(part["text"].encode())
            if isinstance(part.get("functionCall"), dict):
                total += len(orjson.dumps(part["functionCall"].get("args") or {}))
    return total


@dataclass(slots=True)
class Frames:
    """How a stream's events reach a Gemini client: SSE events, or one JSON array."""

    sse: bool
    opened: bool = False

    def frame(self, event: JSONObject) -> bytes:
        data = orjson.dumps(event)
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        head, self.opened = (b",\r\n" if self.opened else b"["), True
        return head + data

    def close(self) -> bytes:
        return b"" if self.sse else (b"]" if self.opened else b"[]")

    def error(self, failure: UpstreamFailure) -> bytes:
        return self.frame(gemini_errors.body(failure)) + self.close()


@dataclass(slots=True)
class _Native:
    provider: NativeGemini
    request: Prepared
    frames_: Frames
    searches: int = 0  # grounding's Google Search queries, as the stream reported them

    async def complete(self, max_tokens: int) -> Answer:
        answer = await self.provider.generate(self.request.limit(max_tokens))
        searches = gemini_response.web_searches(answer)
        usage = gemini_response.usage_of(answer.get("usageMetadata"), searches)
        return Answer(answer, usage, output_bytes(answer))

    def events(self, max_tokens: int) -> AsyncGenerator[JSONObject, None]:
        return self.provider.generate_stream(self.request.limit(max_tokens))

    def frames(self, event: JSONObject, meter: Meter) -> Iterable[bytes]:
        meter.output_bytes += output_bytes(event)
        self.searches = max(self.searches, gemini_response.web_searches(event))
        usage = gemini_response.usage_of(event.get("usageMetadata"), self.searches)
        if usage is not None:  # every event repeats the usage so far; the last, the totals
            meter.usage = usage
            meter.final_usage = meter.final_usage or finished(event)
        return (self.frames_.frame(event),)

    def closing(self) -> Iterable[bytes]:
        return (self.frames_.close(),)

    def broken(self, failure: UpstreamFailure) -> bytes:
        return self.frames_.error(failure)


@dataclass(slots=True)
class _Translated:
    provider: Provider
    request: Prepared
    model_id: str
    frames_: Frames
    translator: ChunksToGenerate = field(init=False)

    def __post_init__(self) -> None:
        self.translator = ChunksToGenerate(self.model_id)

    async def complete(self, max_tokens: int) -> Answer:
        usage = None
        try:
            completion = await self.provider.send(self.request.limit(max_tokens))
            usage = usage_from_openai(completion.get("usage"))
            answer = completion_to_generate(completion, self.model_id)
        except UpstreamFailure as failure:
            # An answer we cannot translate is a failure, but its reported usage is owed.
            failure.usage = failure.usage or usage
            raise
        written = sum(estimate.output_bytes(c.get("message") or {}) for c in completion["choices"])
        return Answer(answer, usage, written)

    def events(self, max_tokens: int) -> AsyncGenerator[JSONObject, None]:
        return self.provider.send_stream(self.request.limit(max_tokens))

    def frames(self, chunk: JSONObject, meter: Meter) -> Iterable[bytes]:
        meter.openai_chunk(chunk)
        return [self.frames_.frame(event) for event in self.translator.feed(chunk)]

    def closing(self) -> Iterable[bytes]:
        try:
            last = self.translator.finish()
        except UpstreamFailure as failure:  # a tool call Gemini's shape cannot carry
            return (self.frames_.error(failure),)
        return [*(self.frames_.frame(event) for event in last), self.frames_.close()]

    def broken(self, failure: UpstreamFailure) -> bytes:
        return self.frames_.error(failure)


def streamed_as_json(response: Response) -> Response:
    """A stream without `alt=sse` is one JSON array, not an event stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        response.headers["content-type"] = JSON_ARRAY
    return response
