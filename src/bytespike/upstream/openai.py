"""OpenAI Chat Completions upstreams: OpenAI itself and every server that copies its API
(vLLM, Ollama, LM Studio, ...). One class; the differences are registry data.

The request goes out nearly as received. Answers are passed through, only filled in where
sloppy compat servers leave out what the OpenAI schema requires (`object`, `created`,
`logprobs`, `refusal`, ...), so clients' SDKs parse them.

Failure policy: transport failures as in upstream/transport.py; a non-2xx is an
`UpstreamError` carrying the upstream's own message and type; a 2xx body that is not a
chat completion (or a stream with no events, or an event that is not JSON) is
`UpstreamMalformed`. A stream that
ends cleanly without usage is a normal end (the proxy deals with missing usage); one that
ends before any `finish_reason` or `[DONE]` is `UpstreamUnavailable`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from typing import Any

from bytespike.upstream import embeddings, sse, transport
from bytespike.upstream.base import (
    Endpoint,
    JSONObject,
    Prepared,
    UpstreamError,
    UpstreamMalformed,
    UpstreamUnavailable,
    prepared_or_refused,
)
from bytespike.upstream.client import Client, Response

ANSWER = "the upstream's answer"  # how malformed answers are named to clients


def request_body(body: JSONObject, *, stream: bool, max_tokens_field: str) -> JSONObject:
    """What to POST upstream for the proxy's `body`."""
    out = dict(body)
    out["stream"] = stream
    if stream:
        # Usage is what we bill on; without it a streamed answer could not be settled.
        out["stream_options"] = {**(out.get("stream_options") or {}), "include_usage": True}
    else:
        out.pop("stream_options", None)  # OpenAI rejects it on non-streaming calls
    if max_tokens_field != "max_completion_tokens" and "max_completion_tokens" in out:
        out[max_tokens_field] = out.pop("max_completion_tokens")
    return out


def completion(raw: bytes, *, model: str) -> JSONObject:
    """A chat.completion from the upstream's 2xx body, with schema-required gaps filled."""
    body = transport.json_object(raw, ANSWER)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise UpstreamMalformed("the upstream's answer has no choices")
    body["object"] = "chat.completion"
    if not body.get("id"):  # a fresh id only when the upstream gave none
        body["id"] = f"chatcmpl-{uuid.uuid4().hex}"
    _fill_header(body, created=int(time.time()), model=model)
    for index, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise UpstreamMalformed("a choice in the upstream's answer has no message")
        choice.setdefault("index", index)
        choice.setdefault("logprobs", None)
        message.setdefault("role", "assistant")
        message.setdefault("content", None)
        message.setdefault("refusal", None)
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                call.setdefault("type", "function")
        if choice.get("finish_reason") is None:
            choice["finish_reason"] = "tool_calls" if message.get("tool_calls") else "stop"
    return body


def chunk(data: str, header: JSONObject) -> JSONObject:
    """A chat.completion.chunk from one stream event; `header` (id, created, model) fills
    what the event leaves out, so every chunk of a stream agrees."""
    body = transport.json_object(data, ANSWER)
    if "choices" not in body and isinstance(body.get("error"), dict):
        # An error after the 200 went out: only the body can say so.
        detail = body["error"]
        code = detail.get("code")
        raise UpstreamError(
            code if isinstance(code, int) else 500,
            str(detail.get("message") or "the upstream failed mid-stream"),
            error_type=detail.get("type") if isinstance(detail.get("type"), str) else None,
        )
    choices = body.setdefault("choices", [])
    if not isinstance(choices, list):
        raise UpstreamMalformed("a stream event's choices is not a list")
    body["object"] = "chat.completion.chunk"
    _fill_header(body, **header)
    for index, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise UpstreamMalformed("a stream event's choice is not an object")
        choice.setdefault("index", index)
        choice.setdefault("delta", {})
        choice.setdefault("finish_reason", None)
    return body


def _fill_header(body: JSONObject, **defaults: Any) -> None:
    for key, value in defaults.items():
        if not body.get(key):
            body[key] = value


class OpenAIProvider:
    """An OpenAI-compatible upstream at `endpoint.base_url` (which ends in /v1)."""

    def __init__(
        self,
        *,
        name: str,
        endpoint: Endpoint,
        client: Client,
        max_tokens_field: str = "max_completion_tokens",
    ) -> None:
        self.name = name
        self._client = client  # its creator (upstream/registry.py) closes it
        self._base_url = endpoint.base_url.rstrip("/")
        self._url = self._base_url + "/chat/completions"
        self._embeddings_url = self._base_url + "/embeddings"
        self._headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self._timeout = transport.timeout(endpoint)
        self._max_tokens_field = max_tokens_field

    def prepare(self, body: JSONObject) -> Prepared:
        stream = bool(body.get("stream"))
        payload = request_body(body, stream=stream, max_tokens_field=self._max_tokens_field)
        model = str(body.get("model", ""))
        return Prepared(model=model, payload=payload, limit_at=(self._max_tokens_field,))

    async def complete(self, body: JSONObject) -> JSONObject:
        return await self.send(prepared_or_refused(self, body))

    def stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]:
        return self.send_stream(prepared_or_refused(self, body))

    async def send(self, request: Prepared) -> JSONObject:
        async with self._post(request.payload) as response:
            raw = await response.read()
        return completion(raw, model=request.model)

    async def send_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        header: JSONObject = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": request.model,
        }
        events = 0
        finished = False
        async with self._post(request.payload) as response:
            async for _, data in sse.events(response):
                if data == "[DONE]":
                    return
                out = chunk(data, header)
                if not events:  # the first chunk's id/created/model, for all
                    header = {key: out[key] for key in header}
                events += 1
                finished = finished or any(c.get("finish_reason") for c in out["choices"])
                yield out
        if not events:
            raise UpstreamMalformed("the upstream's answer is not an event stream")
        if not finished:
            raise UpstreamUnavailable("the upstream's stream ended before the answer did")

    def prepare_embeddings(self, body: JSONObject) -> Prepared:
        """Embeddings (the Embeddings capability): the request goes as sent."""
        return Prepared(model=str(body.get("model", "")), payload=dict(body), limit_at=())

    async def embed(self, request: Prepared) -> JSONObject:
        count = len(embeddings.inputs(request.payload))
        async with self._post(request.payload, url=self._embeddings_url) as response:
            raw = await response.read()
        return embeddings.response(raw, count=count)

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever passed it in."""

    def _post(
        self, payload: JSONObject, *, url: str | None = None
    ) -> AbstractAsyncContextManager[Response]:
        return transport.post(
            self._client,
            url or self._url,
            payload,
            headers=self._headers,
            limits=self._timeout,
            error=transport.error_body,
        )
