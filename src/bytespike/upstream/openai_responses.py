"""The OpenAI Responses API as an upstream (`POST {base}/responses`): an OpenAI provider that
speaks it (the NativeResponses capability) gets a Responses client's request untranslated.

Failure policy: as upstream/openai.py: transport failures as in upstream/transport.py, a
non-2xx is an `UpstreamError` with OpenAI's message and type, a 2xx body that is not a
Response (or a stream event that is not a JSON object with a `type`) is `UpstreamMalformed`.
An `error` event mid-stream is an `UpstreamError`; a stream that ends before its terminal
event (response.completed, .incomplete or .failed) is `UpstreamUnavailable`. Failures after
the usage was reported carry it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol, runtime_checkable

from bytespike.upstream import sse, transport
from bytespike.upstream.base import (
    JSONObject,
    UpstreamError,
    UpstreamFailure,
    UpstreamMalformed,
    UpstreamUnavailable,
    Usage,
    tokens,
)
from bytespike.upstream.openai import OpenAIProvider

ANSWER = "the upstream's Response"
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


@runtime_checkable
class NativeResponses(Protocol):
    """Optional capability: the provider speaks the Responses API itself."""

    async def responses(self, body: JSONObject) -> JSONObject:
        """Non-streaming call; returns the Response object."""
        ...

    def responses_stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]:
        """Streaming call; yields the stream's events (objects with a `type`) as sent,
        through the terminal one."""
        ...


def usage_from_responses(usage: Any, output: Any = None) -> Usage | None:
    """Usage of a Response's `usage`: cached tokens and cache writes are part of
    input_tokens, reasoning tokens of output_tokens. Each `web_search_call` item of its
    `output` is a web search, billed per call (OpenAI reports them there, not in usage)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    prompt = details if isinstance(details, dict) else {}
    reasoning = usage.get("output_tokens_details")
    items = [item for item in output or () if isinstance(item, dict)]
    calls = sum(1 for item in items if item.get("type") == "web_search_call")
    server = usage.get("server_tool_use")  # a translated provider's searches (Anthropic's)
    reported = tokens(server, "web_search_requests") if isinstance(server, dict) else 0
    return Usage(
        input_tokens=tokens(usage, "input_tokens"),
        output_tokens=tokens(usage, "output_tokens"),
        cached_tokens=tokens(prompt, "cached_tokens"),
        cache_write_tokens=tokens(prompt, "cache_write_tokens"),
        cache_write_1h_tokens=tokens(prompt, "cache_write_1h_tokens"),
        reasoning_tokens=tokens(
            reasoning if isinstance(reasoning, dict) else {}, "reasoning_tokens"
        ),
        tool_prompt_tokens=tokens(prompt, "tool_use_prompt_tokens"),
        web_search_requests=max(calls, reported),
    )


def response_object(raw: bytes) -> JSONObject:
    body = transport.json_object(raw, ANSWER)
    if body.get("object") != "response" or not isinstance(body.get("output"), list):
        raise UpstreamMalformed(f"{ANSWER} is not a Response object")
    return body


def stream_event(data: str, usage: Usage | None) -> JSONObject:
    event = transport.json_object(data, "a stream event of the upstream")
    kind = event.get("type")
    if not isinstance(kind, str):
        raise UpstreamMalformed("a stream event of the upstream has no type")
    if kind == "error":
        code = event.get("code")
        message = str(event.get("message") or "the upstream failed mid-stream")
        status = 429 if code == "rate_limit_exceeded" else 500
        raise UpstreamError(status, message, usage=usage)
    return event


class OpenAIResponsesProvider(OpenAIProvider):
    """An OpenAI upstream (`endpoint.base_url` ends in /v1) speaking Chat Completions and the
    Responses API."""

    @property
    def _responses_url(self) -> str:
        return self._base_url + "/responses"

    async def responses(self, body: JSONObject) -> JSONObject:
        async with self._post({**body, "stream": False}, url=self._responses_url) as response:
            raw = await response.read()
        return response_object(raw)

    async def responses_stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]:
        usage: Usage | None = None
        events = 0
        try:
            async with self._post({**body, "stream": True}, url=self._responses_url) as response:
                async for _, data in sse.events(response):
                    event = stream_event(data, usage)
                    events += 1
                    if event["type"] in TERMINAL:
                        done = event.get("response") or {}
                        usage = usage_from_responses(done.get("usage"), done.get("output"))
                    yield event
                    if event["type"] in TERMINAL:
                        return
        except UpstreamFailure as exc:
            exc.usage = exc.usage or usage
            raise
        if not events:
            raise UpstreamMalformed(f"{ANSWER} is not an event stream")
        raise UpstreamUnavailable("the upstream's stream ended before the response did")
