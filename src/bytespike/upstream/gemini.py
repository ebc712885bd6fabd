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
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from urllib.parse import quote

import aiohttp

from bytespike.upstream import gemini_response, sse, transport
from bytespike.upstream.base import (
    Endpoint,
    JSONObject,
    Prepared,
    UpstreamFailure,
    UpstreamMalformed,
    UpstreamUnavailable,
    prepared_or_refused,
)
from bytespike.upstream.gemini_request import generate_content_request

LIMIT_AT = ("generationConfig", "maxOutputTokens")


class GeminiProvider:
    """A Gemini upstream at `endpoint.base_url`, a bare host as in Google's SDKs."""

    def __init__(self, *, name: str, endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
        self.name = name
        self._session = session  # its creator (upstream/registry.py) closes it
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
        async with self._post(request.model, ":generateContent", request.payload) as response:
            raw = await response.read()
        return gemini_response.completion(gemini_response.parse(raw), model=request.model)

    async def send_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        model, payload = request.model, request.payload
        translator = gemini_response.StreamTranslator(model=model)
        events = 0
        try:
            async with self._post(model, ":streamGenerateContent?alt=sse", payload) as response:
                async for _, data in sse.events(response):
                    events += 1
                    for chunk in translator.chunks(gemini_response.parse(data)):
                        yield chunk
        except UpstreamFailure as exc:
            # Every Gemini event repeats the usage so far; those tokens were spent.
            exc.usage = exc.usage or translator.usage()
            raise
        if not events:
            raise UpstreamMalformed("Gemini's answer is not an event stream")
        if not translator.finished:
            raise UpstreamUnavailable(
                "Gemini's stream ended before the answer did", usage=translator.usage()
            )
        last = translator.last()
        if last is not None:
            yield last

    async def close(self) -> None:
        """Nothing to release: the session belongs to whoever passed it in."""

    def _post(
        self, model: str, method: str, payload: JSONObject
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        # Catalog names may carry the resource prefix ("models/gemini-2.5-flash").
        url = self._base + quote(model.removeprefix("models/"), safe="") + method
        return transport.post(
            self._session,
            url,
            payload,
            headers=self._headers,
            limits=self._timeout,
            error=gemini_response.error,
        )
