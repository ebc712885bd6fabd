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
from typing import Any, Protocol, runtime_checkable

import orjson

from bytespike.errors import InvalidRequest

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


@dataclass(slots=True)
class Prepared:
    """One call's request in the provider's own wire format, translated (and so checked)
    before the hold: once the hold has fixed the output limit, `limit` puts it where the
    provider reads it, which cannot fail."""

    model: str  # the upstream's model name
    payload: JSONObject
    limit_at: tuple[str, ...]  # the path of the output-limit field inside `payload`

    def limit(self, max_tokens: int) -> Prepared:
        node = self.payload
        for key in self.limit_at[:-1]:
            node = node.setdefault(key, {})
        node[self.limit_at[-1]] = max_tokens
        return self


class Provider(Protocol):
    """One upstream, with its pooled HTTP client. Implementations: upstream/openai.py (also
    every OpenAI-compatible server), anthropic.py, gemini.py, mock.py.

    The proxy calls `prepare` before placing a hold (it raises InvalidRequest for what the
    provider cannot express), then `send` or `send_stream`, whose only failures are the
    upstream's (UpstreamFailure). `complete` and `stream` do both at once for callers that
    hold no money (they report an unexpressible request as an UpstreamError 400)."""

    name: str

    def prepare(self, body: JSONObject) -> Prepared:
        """The provider's request for an OpenAI chat request body (`stream` read from it)."""
        ...

    async def send(self, request: Prepared) -> JSONObject:
        """Non-streaming call; returns an OpenAI chat.completion object with `usage`."""
        ...

    def send_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        """Streaming call; yields OpenAI chat.completion.chunk objects, the last with `usage`
        (and empty `choices`). Raises an UpstreamFailure if the stream breaks."""
        ...

    async def complete(self, body: JSONObject) -> JSONObject: ...

    def stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]: ...

    async def close(self) -> None: ...


def prepared_or_refused(provider: Provider, body: JSONObject) -> Prepared:
    """`provider.prepare`, with what it cannot express reported the way an upstream call
    fails (a 400 UpstreamError): for `complete` and `stream`, which hold no money."""
    try:
        return provider.prepare(body)
    except InvalidRequest as exc:
        raise UpstreamError(400, exc.message, error_type="invalid_request_error") from exc


@runtime_checkable
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


@runtime_checkable
class CountsMessageTokens(Protocol):
    """Optional capability: the provider counts an Anthropic Messages request's input tokens
    itself (Anthropic's POST /v1/messages/count_tokens), without running the model."""

    async def count_message_tokens(self, body: JSONObject, *, beta: str | None = None) -> int:
        """The request's input tokens, as the provider would bill them."""
        ...


def arguments_object(arguments: Any) -> JSONObject | None:
    """An OpenAI tool call's `arguments` (JSON text) as the object Anthropic and Gemini
    take; None if it is not one. No arguments at all are `{}`."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except (TypeError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def tokens(usage: JSONObject, key: str) -> int:
    """A token count an upstream reported (absent or null: 0). Anything else is a malformed
    answer, the upstream's failure, never a crash on the way to settling."""
    value = usage.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UpstreamMalformed(f"the upstream reported {key} as {str(value)[:40]!r}")
    return value


def usage_from_openai(usage: JSONObject | None) -> Usage | None:
    """Usage of an OpenAI `usage` object (prompt/completion tokens, cached details)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    return Usage(
        input_tokens=tokens(usage, "prompt_tokens"),
        output_tokens=tokens(usage, "completion_tokens"),
        cached_tokens=tokens(details, "cached_tokens") if isinstance(details, dict) else 0,
    )


def usage_from_anthropic(usage: JSONObject | None) -> Usage | None:
    """Anthropic reports uncached input apart from cache writes and reads; we bill them all."""
    if not isinstance(usage, dict):
        return None
    cache_write = tokens(usage, "cache_creation_input_tokens")
    cache_read = tokens(usage, "cache_read_input_tokens")
    return Usage(
        input_tokens=tokens(usage, "input_tokens") + cache_write + cache_read,
        output_tokens=tokens(usage, "output_tokens"),
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
