"""What every upstream provider looks like to the proxy, and how an upstream call can fail.

The proxy speaks one request shape to every provider: an OpenAI Chat Completions request
body (a plain dict, `model` already the upstream's name, `max_completion_tokens` set).
Each provider answers with an OpenAI `chat.completion` object, or streams OpenAI
`chat.completion.chunk` objects whose last one carries `usage`. A provider with another
wire format (Anthropic, Gemini) translates both ways with pure functions and keeps
`send()`/HTTP thin.

Failure policy: every failure of the upstream surfaces as one of the exceptions below and
never as a half answer; the proxy releases the hold and bills only usage the upstream
itself reported (`UpstreamFailure.usage`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import orjson

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the upstream reported. `input_tokens` counts every prompt token, cached ones
    included; `cached_tokens` is the part of it read from a prompt cache."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0


class UpstreamFailure(Exception):
    """Base of every way an upstream call can fail."""

    status = 502
    type = "api_error"
    usage_status = "unavailable"  # the usage record's status for a call that failed so
    # What a client's error body and headers carry besides; an upstream failure has none.
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class UpstreamError(UpstreamFailure):
    """The upstream answered with an error status. A 4xx is the client's fault and is passed
    through with its status; a 5xx becomes a 502."""

    usage_status = "upstream_error"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message, usage=usage)
        self.upstream_status = status
        self.status = status if 400 <= status < 500 else 502
        self.type = error_type or ("invalid_request_error" if 400 <= status < 500 else "api_error")


class UpstreamTimeout(UpstreamFailure):
    status = 504
    usage_status = "timeout"


class UpstreamUnavailable(UpstreamFailure):
    """Could not connect, or the connection dropped before an answer."""


class UpstreamMalformed(UpstreamFailure):
    """The upstream answered 2xx with a body that is not its documented format."""

    usage_status = "malformed"


class Provider(Protocol):
    """One upstream, with its pooled HTTP client. Implementations: upstream/openai.py (also
    every OpenAI-compatible server), anthropic.py, gemini.py, mock.py."""

    name: str

    async def complete(self, body: JSONObject) -> JSONObject:
        """Non-streaming call; returns an OpenAI chat.completion object with `usage`."""
        ...

    def stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]:
        """Streaming call; yields OpenAI chat.completion.chunk objects, the last with `usage`
        (and empty `choices`). Raises an UpstreamFailure if the stream breaks."""
        ...

    async def close(self) -> None: ...


class NativeMessages(Protocol):
    """Optional capability: the provider speaks Anthropic Messages itself, so an Anthropic
    client's request goes through untranslated (nothing is lost on the way)."""

    async def messages(self, body: JSONObject, *, beta: str | None = None) -> JSONObject:
        """Non-streaming Anthropic Messages call; returns the Message object. `beta`: the
        client's `anthropic-beta` header, passed on (features it opts into)."""
        ...

    def messages_stream(
        self, body: JSONObject, *, beta: str | None = None
    ) -> AsyncGenerator[tuple[str, JSONObject], None]:
        """Streaming Anthropic Messages call; yields (event name, data) pairs as sent."""
        ...


def arguments_object(arguments: Any) -> JSONObject | None:
    """An OpenAI tool call's `arguments` (JSON text) as the object Anthropic and Gemini
    take; None if it is not one. No arguments at all are `{}`."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except (TypeError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def usage_from_openai(usage: JSONObject | None) -> Usage | None:
    """Usage of an OpenAI `usage` object (prompt/completion tokens, cached details)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


def usage_from_anthropic(usage: JSONObject | None) -> Usage | None:
    """Anthropic reports uncached input apart from cache writes and reads; we bill them all."""
    if not isinstance(usage, dict):
        return None
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_write + cache_read,
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=cache_read,
    )


def openai_usage(usage: Usage) -> JSONObject:
    """The OpenAI `usage` object for `usage` (what translated providers put on responses)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a provider lives and how it is reached; built by upstream/registry.py from the
    catalog and the SDK-convention env vars (OPENAI_BASE_URL ends in /v1; ANTHROPIC_BASE_URL
    and GEMINI_BASE_URL are bare hosts)."""

    base_url: str
    api_key: str | None
    connect_timeout: float = 10.0
    # Longest silence between two reads (a whole non-streaming answer may take minutes).
    read_timeout: float = 600.0
