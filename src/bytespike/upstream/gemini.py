"""Google Gemini upstream (generativelanguage.googleapis.com, or anything speaking its
`generateContent` API). Translation lives in gemini_request.py and gemini_response.py;
this module only sends.

Failure policy: a request Gemini cannot express is an `InvalidRequest` from `prepare`,
before any hold (an `UpstreamError` 400 from `complete` and `stream`); transport failures
as in upstream/transport.py; a non-2xx is an `UpstreamError` with Gemini's message and an
OpenAI-style type; a 2xx body that is not a GenerateContentResponse (or a stream with no
events) is `UpstreamMalformed`. A stream that ends cleanly without usage ends normally
(no usage chunk); one that ends before any finishReason is `UpstreamUnavailable`.
Failures mid-stream carry the usage Gemini had reported so far.

Besides the OpenAI shape every provider speaks, it speaks Gemini's own API to Gemini
clients (the NativeGemini capability: their requests pass untranslated) and embeds
through `batchEmbedContents` (the Embeddings capability, upstream/embeddings.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from bytespike.upstream import gemini_embed, gemini_response, sse, transport
from bytespike.upstream.base import (
    Endpoint,
    JSONObject,
    Prepared,
    UpstreamFailure,
    UpstreamMalformed,
    UpstreamUnavailable,
    Usage,
    prepared_or_refused,
)
from bytespike.upstream.client import Client, Response
from bytespike.upstream.gemini_request import generate_content_request

LIMIT_AT = ("generationConfig", "maxOutputTokens")


@runtime_checkable
class NativeGemini(Protocol):
    """Optional capability: the provider speaks Gemini's API itself, so a Gemini client's
    request goes through untranslated. `Prepared.model` is the upstream's model name."""

    async def generate(self, request: Prepared) -> JSONObject:
        """generateContent; the GenerateContentResponse as Gemini sent it (checked)."""
        ...

    def generate_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        """streamGenerateContent; each GenerateContentResponse as Gemini sent it."""
        ...

    async def call(self, model: str, method: str, payload: JSONObject) -> JSONObject:
        """Any other method of a model (countTokens, embedContent, batchEmbedContents)."""
        ...


class GeminiProvider:
    """A Gemini upstream at `endpoint.base_url`, a bare host as in Google's SDKs."""

    def __init__(self, *, name: str, endpoint: Endpoint, client: Client) -> None:
        self.name = name
        self._client = client  # its creator (upstream/registry.py) closes it
        self._base = endpoint.base_url.rstrip("/") + "/v1beta/models/"
        self._headers = {"x-goog-api-key": endpoint.api_key} if endpoint.api_key else {}
        self._timeout = transport.timeout(endpoint)

    def prepare(self, body: JSONObject) -> Prepared:
        model = str(body.get("model", ""))
        payload = generate_content_request(body)
        return Prepared(model=model, payload=payload, limit_at=LIMIT_AT)

    async def complete(self, body: JSONObject) -> JSONObject:
        return await self.send(prepared_or_refused(self, body))

    def stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]:
        return self.send_stream(prepared_or_refused(self, body))

    async def send(self, request: Prepared) -> JSONObject:
        return gemini_response.completion(await self.generate(request), model=request.model)

    async def send_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        translator = gemini_response.StreamTranslator(model=request.model)
        try:
            async for event in self.generate_stream(request):
                for chunk in translator.chunks(event):
                    yield chunk
        except UpstreamFailure as exc:
            exc.usage = exc.usage or translator.usage()
            raise
        last = translator.last()
        if last is not None:
            yield last

    async def generate(self, request: Prepared) -> JSONObject:
        async with self._post(request.model, ":generateContent", request.payload) as response:
            return gemini_response.parse(await response.read())

    async def generate_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        usage: Usage | None = None
        events, done, searches = 0, False, 0
        method = ":streamGenerateContent?alt=sse"
        try:
            async with self._post(request.model, method, request.payload) as response:
                async for _, data in sse.events(response):
                    event = gemini_response.parse(data)
                    events += 1
                    # Every Gemini event repeats the usage so far; those tokens were spent.
                    searches = max(searches, gemini_response.web_searches(event))
                    metadata = event.get("usageMetadata")
                    usage = gemini_response.usage_of(metadata, searches) or usage
                    done = done or finished(event)
                    yield event
        except UpstreamFailure as exc:
            exc.usage = exc.usage or usage
            raise
        if not events:
            raise UpstreamMalformed("Gemini's answer is not an event stream")
        if not done:
            raise UpstreamUnavailable("Gemini's stream ended before the answer did", usage=usage)

    async def call(self, model: str, method: str, payload: JSONObject) -> JSONObject:
        async with self._post(model, ":" + method, payload) as response:
            return transport.json_object(await response.read(), "Gemini's answer")

    def prepare_embeddings(self, body: JSONObject) -> Prepared:
        model = str(body.get("model", ""))
        return Prepared(model=model, payload=gemini_embed.batch_request(body), limit_at=())

    async def embed(self, request: Prepared) -> JSONObject:
        count = len(request.payload["requests"])
        async with self._post(request.model, ":batchEmbedContents", request.payload) as response:
            raw = await response.read()
        return gemini_embed.openai_response(raw, model=request.model, count=count)

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever passed it in."""

    def _post(
        self, model: str, method: str, payload: JSONObject
    ) -> AbstractAsyncContextManager[Response]:
        # Catalog names may carry the resource prefix ("models/gemini-2.5-flash").
        url = self._base + quote(model.removeprefix("models/"), safe="") + method
        return transport.post(
            self._client,
            url,
            payload,
            headers=self._headers,
            limits=self._timeout,
            error=gemini_response.error,
        )


def finished(event: JSONObject) -> bool:
    """The event ends the answer: a finishReason, or the prompt itself blocked."""
    candidates = event.get("candidates") or []
    if candidates:
        return bool(candidates[0].get("finishReason"))
    feedback = event.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))
