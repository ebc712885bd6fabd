"""Anthropic's Messages API as an upstream: the OpenAI lingua franca through the pure
translations in bytespike.translate, and Messages natively for Anthropic clients.

Failure policy: transport failures as in upstream/transport.py; a non-2xx is an
`UpstreamError` with Anthropic's own error message and type; a 2xx that is not a Message,
or a stream event that is not JSON, is `UpstreamMalformed`. An `error` event mid-stream is
an `UpstreamError` (502 to clients), and a stream that ends before message_stop is
`UpstreamUnavailable`; every failure after message_start carries the usage seen so far,
which is what Anthropic bills. A token count that is not `{"input_tokens": N}` is
`UpstreamMalformed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager

from bytespike.translate.anthropic_request import openai_request_to_messages
from bytespike.translate.anthropic_response import is_message, message_to_openai
from bytespike.translate.anthropic_stream import MessagesStreamToOpenAI, fold_stream_usage
from bytespike.upstream import sse, transport
from bytespike.upstream.base import (
    Endpoint,
    JSONObject,
    Prepared,
    UpstreamError,
    UpstreamFailure,
    UpstreamMalformed,
    UpstreamUnavailable,
    Usage,
    prepared_or_refused,
)
from bytespike.upstream.client import Client, Response

API_VERSION = "2023-06-01"


def error(status: int, raw: bytes) -> UpstreamError:
    """Anthropic's `{"type": "error", "error": {"type", "message"}}`, or the raw text."""
    return transport.error_body(status, raw, who="Anthropic")


def stream_error(data: JSONObject, usage: Usage | None) -> UpstreamError:
    """An `error` event after the 200: overloaded reads as Anthropic's 529, anything else as
    a 500; both reach clients as 502, since the answer had already begun."""
    detail = data.get("error")
    if not isinstance(detail, dict):
        detail = {}
    kind = detail.get("type") if isinstance(detail.get("type"), str) else "api_error"
    message = str(detail.get("message") or "Anthropic failed mid-stream")
    status = 529 if kind == "overloaded_error" else 500
    return UpstreamError(status, message, error_type=kind, usage=usage)


class AnthropicProvider:
    """An Anthropic Messages upstream at `endpoint.base_url` (a bare host)."""

    def __init__(self, *, name: str, endpoint: Endpoint, client: Client) -> None:
        self.name = name
        self._client = client  # its creator (upstream/registry.py) closes it
        self._url = endpoint.base_url.rstrip("/") + "/v1/messages"
        self._count_url = self._url + "/count_tokens"
        self._headers = {"anthropic-version": API_VERSION}
        if endpoint.api_key:
            self._headers["x-api-key"] = endpoint.api_key
        self._timeout = transport.timeout(endpoint)

    def prepare(self, body: JSONObject) -> Prepared:
        payload = openai_request_to_messages(body)
        return Prepared(model=str(payload.get("model")), payload=payload, limit_at=("max_tokens",))

    async def complete(self, body: JSONObject) -> JSONObject:
        return await self.send(prepared_or_refused(self, body))

    def stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]:
        return self.send_stream(prepared_or_refused(self, body))

    async def send(self, request: Prepared) -> JSONObject:
        return message_to_openai(await self.messages(request.payload))

    async def send_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        translator = MessagesStreamToOpenAI()
        # aclosing: a consumer that leaves early must free the connection now, not at GC.
        events = self.messages_stream(request.payload)
        async with contextlib.aclosing(events):
            async for event, data in events:
                for chunk in translator.feed(event, data):
                    yield chunk
        for chunk in translator.finish():
            yield chunk

    async def messages(self, body: JSONObject, *, beta: str | None = None) -> JSONObject:
        async with self._post({**body, "stream": False}, beta) as response:
            raw = await response.read()
        message = transport.json_object(raw, "Anthropic's answer")
        if not is_message(message):
            raise UpstreamMalformed("Anthropic answered with something that is not a Message")
        return message

    async def messages_stream(
        self, body: JSONObject, *, beta: str | None = None
    ) -> AsyncGenerator[tuple[str, JSONObject], None]:
        usage: Usage | None = None
        try:
            async with self._post({**body, "stream": True}, beta) as response:
                async for name, raw in sse.events(response):
                    data = transport.json_object(raw, "Anthropic's stream event")
                    event = name or str(data.get("type") or "")
                    if event == "error":
                        raise stream_error(data, usage)
                    usage = fold_stream_usage(event, data, usage)
                    yield event, data
                    if event == "message_stop":
                        return
        except UpstreamFailure as exc:
            # Transport failures mid-stream are named in transport.post, which cannot know
            # what the stream had reported; the tokens were spent all the same.
            exc.usage = exc.usage or usage
            raise
        raise UpstreamUnavailable("Anthropic's stream ended before message_stop", usage=usage)

    async def count_message_tokens(self, body: JSONObject, *, beta: str | None = None) -> int:
        async with self._post(body, beta, url=self._count_url) as response:
            raw = await response.read()
        count = transport.json_object(raw, "Anthropic's token count").get("input_tokens")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise UpstreamMalformed("Anthropic's token count has no input_tokens")
        return count

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever passed it in."""

    def _post(
        self, payload: JSONObject, beta: str | None = None, *, url: str | None = None
    ) -> AbstractAsyncContextManager[Response]:
        headers = self._headers if beta is None else {**self._headers, "anthropic-beta": beta}
        return transport.post(
            self._client,
            url or self._url,
            payload,
            headers=headers,
            limits=self._timeout,
            error=error,
        )
