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
from bytespike.records import record

JSONObject = dict[str, Any]


@record
class Usage:
    """What the upstream reported, by billing class. `input_tokens` counts every prompt
    token (read from a cache, written to one, tool-use prompts: all included) and
    `output_tokens` every generated one (reasoning included); the other token counts are
    parts of those two, never added to them again. docs/pricing.md maps each provider's
    fields onto these."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0  # of the input, read from a prompt cache
    cache_write_tokens: int = 0  # of the input, written to a prompt cache (1-hour ones too)
    cache_write_1h_tokens: int = 0  # of those writes, the ones kept for an hour
    reasoning_tokens: int = 0  # of the output, thinking
    # Of the input, prompts of Google-run tools (Gemini's toolUsePromptTokenCount): billed
    # as input, but not part of the prompt whose size picks a long-context tier.
    tool_prompt_tokens: int = 0
    web_search_requests: int = 0  # server-side web searches, billed per call

    @property
    def prompt_tokens(self) -> int:
        """The prompt's size, which picks a long-context tier."""
        return self.input_tokens - self.tool_prompt_tokens

    @property
    def uncached_tokens(self) -> int:
        """Input tokens neither read from nor written to a cache: the input price's."""
        return max(0, self.input_tokens - self.cached_tokens - self.cache_write_tokens)


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
    if type(value) is int and value >= 0:  # the common case: one check
        return value
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UpstreamMalformed(f"the upstream reported {key} as {str(value)[:40]!r}")
    return value


def _part(usage: JSONObject, name: str) -> JSONObject:
    """A nested details object of a usage object (absent or null: empty)."""
    value = usage.get(name)
    return value if isinstance(value, dict) else {}


def usage_from_openai(usage: JSONObject | None) -> Usage | None:
    """Usage of an OpenAI `usage` object: `prompt_tokens` include the cached ones and
    `completion_tokens` the reasoning ones. The classes OpenAI's shape has no field for
    (cache writes, their 1-hour part, Gemini's tool-use prompts, web searches) are read
    from the fields `openai_usage` writes them in, so every class survives a translation."""
    if not isinstance(usage, dict):
        return None
    prompt = _part(usage, "prompt_tokens_details")
    return Usage(
        input_tokens=tokens(usage, "prompt_tokens"),
        output_tokens=tokens(usage, "completion_tokens"),
        cached_tokens=tokens(prompt, "cached_tokens"),
        cache_write_tokens=tokens(prompt, "cache_write_tokens"),
        cache_write_1h_tokens=tokens(prompt, "cache_write_1h_tokens"),
        reasoning_tokens=tokens(_part(usage, "completion_tokens_details"), "reasoning_tokens"),
        tool_prompt_tokens=tokens(prompt, "tool_use_prompt_tokens"),
        web_search_requests=tokens(_part(usage, "server_tool_use"), "web_search_requests"),
    )


def usage_from_anthropic(usage: JSONObject | None) -> Usage | None:
    """Anthropic reports uncached input apart from cache writes and reads (we bill them all),
    the writes split by lifetime in `cache_creation`, and server tools in `server_tool_use`."""
    if not isinstance(usage, dict):
        return None
    creation = _part(usage, "cache_creation")
    one_hour = tokens(creation, "ephemeral_1h_input_tokens")
    split = one_hour + tokens(creation, "ephemeral_5m_input_tokens")
    cache_write = max(tokens(usage, "cache_creation_input_tokens"), split)
    cache_read = tokens(usage, "cache_read_input_tokens")
    return Usage(
        input_tokens=tokens(usage, "input_tokens") + cache_write + cache_read,
        output_tokens=tokens(usage, "output_tokens"),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=one_hour,
        web_search_requests=tokens(_part(usage, "server_tool_use"), "web_search_requests"),
    )


def openai_usage(usage: Usage) -> JSONObject:
    """The OpenAI `usage` object for `usage` (what translated providers put on responses).
    Classes OpenAI's shape has no field for go where `usage_from_openai` reads them, only
    when there are any: `prompt_tokens_details.cache_write_tokens` (as OpenAI's Responses
    API and OpenRouter name it), `.cache_write_1h_tokens`, `.tool_use_prompt_tokens`, and
    `server_tool_use.web_search_requests` (as Anthropic names it)."""
    prompt: JSONObject = {"cached_tokens": usage.cached_tokens}
    extra = {
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "tool_use_prompt_tokens": usage.tool_prompt_tokens,
    }
    prompt |= {name: count for name, count in extra.items() if count}
    out: JSONObject = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt,
    }
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.web_search_requests:
        out["server_tool_use"] = {"web_search_requests": usage.web_search_requests}
    return out


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
