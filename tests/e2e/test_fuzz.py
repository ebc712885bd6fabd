"""Property-based fuzzing of every route: Hypothesis throws generated bodies, path params
and query strings at a served gateway (on SQLite and PostgreSQL, fake upstreams behind it)
and after each call asserts: no 5xx and no exception logged; an error in the route's own
envelope, or a success in the route's own shape; no pending hold left behind; `available`
unchanged by a refused call; `ledger.verify` clean.

The examples are fixed (derandomized), so the suite is deterministic. Knobs for long runs:
  BYTESPIKE_FUZZ_EXAMPLES=N   examples of the model routes per database (default 800; the
                              key holder's and the admin routes get half as many)
  BYTESPIKE_FUZZ_SEED=S       explore seed S instead of the fixed examples
  BYTESPIKE_FUZZ_LOG=PATH     append every failing example to PATH as a JSON line
  BYTESPIKE_FUZZ_SKIP=A,B     log, but do not raise, failures whose signature contains A or
                              B ("*": none raise), to survey past failures already known

A failure's signature is its route and what went wrong (for a crash, the exception and the
deepest frame in src/); each signature raises its own exception class, so Hypothesis tells
the failures apart and shrinks each to a minimal example.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import logging
import os
import re
import struct
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from traceback import extract_tb
from types import FrameType
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx
import orjson
import pytest
import sqlalchemy as sa
from google.genai import types as genai_types
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from bytespike.billing import ledger
from bytespike.billing.tables import holds
from bytespike.context import Context
from bytespike.keys.service import MAX_RATE_LIMIT
from bytespike.proxy import gemini_errors
from tests.conftest import ADMIN_TOKEN
from tests.e2e import fuzz_bodies as b
from tests.e2e.gateway_support import Upstreams, gateway
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.openai_schema import errors as schema_errors

EXAMPLES = int(os.environ.get("BYTESPIKE_FUZZ_EXAMPLES", "800"))
SEED = os.environ.get("BYTESPIKE_FUZZ_SEED")
LOG = os.environ.get("BYTESPIKE_FUZZ_LOG")
SKIP = [s for s in os.environ.get("BYTESPIKE_FUZZ_SKIP", "").split(",") if s]


# What is sent -------------------------------------------------------------------------------

NO_BODY = b.Raw(b"")


@dataclass(frozen=True)
class Call:
    route: str  # method and template: "POST /v1/chat/completions"
    path: str  # as sent, params and query filled in
    body: Any = NO_BODY  # a JSON value (with `Deep`s), or `Raw` bytes
    model: str | None = None  # the catalog model the valid body was made for
    auth: str = "key"  # key | x-api-key | x-goog-api-key | query (?key=) | admin | none | wrong
    content_type: str | None = "application/json"
    beta: str | None = None  # an anthropic-beta header

    @property
    def method(self) -> str:
        return self.route.split()[0]

    @property
    def family(self) -> str:
        """Whose error envelope the route answers in."""
        if self.gemini:
            return "gemini"
        if self.route.endswith(("/v1/messages", "/v1/messages/count_tokens")):
            return "anthropic"
        return "api" if " /api/" in self.route else "openai"

    @property
    def gemini(self) -> bool:
        """A Gemini route, or a path OpenAI's share asked with a key as Google's SDKs send it."""
        if " /v1beta/" in self.route:
            return True
        return self.route.startswith("GET /v1/models") and self.auth in GOOGLE_AUTHS


KEY_AUTHS = st.sampled_from(("key",) * 7 + ("x-api-key", "none", "wrong"))
GOOGLE_AUTHS = ("x-goog-api-key", "query")
GEMINI_AUTHS = st.sampled_from(("key",) * 3 + GOOGLE_AUTHS * 3 + ("x-api-key", "none", "wrong"))
ADMIN_AUTHS = st.sampled_from(("admin",) * 7 + ("key", "none", "wrong"))
CONTENT_TYPES = st.sampled_from(("application/json",) * 8 + ("text/plain", None))


def param(text: str) -> str:
    return quote(text, safe="")


def _model_call(
    route: str,
    valid: Callable[[str, bool], st.SearchStrategy[Any]],
    models: tuple[str, ...] = b.MODELS,
) -> Any:
    """Calls of a model route, each with a body made valid for one of `models` (streaming or
    not) and then perhaps mutated; a Gemini route's path names the model (or another)."""
    gemini = " /v1beta/" in route

    def calls(model: str, stream: bool) -> st.SearchStrategy[Call]:
        return st.builds(
            Call,
            route=st.just(route),
            path=_gemini_path(route, model) if gemini else st.just(route.split()[1]),
            body=b.bodies(valid(model, stream)),
            model=st.just(model),
            auth=GEMINI_AUTHS if gemini else KEY_AUTHS,
            content_type=CONTENT_TYPES,
            beta=st.none() | st.sampled_from(("prompt-caching-2024-07-31", "x" * 300, "é")),
        )

    return st.tuples(st.sampled_from(models), st.booleans()).flatmap(lambda ms: calls(*ms))


def _gemini_path(route: str, model: str) -> Any:
    """The route's path under /v1beta/ or /v1/, naming `model` mostly, else any catalog
    model (of the other kind too) or an id that names none."""
    ids = st.one_of(st.just(model), st.just(model), st.just(model), st.sampled_from(ALL_MODELS))
    ids |= b.path_ids
    template = route.split()[1]
    return st.builds(
        lambda version, name: template.replace("/v1beta/", version, 1).replace(
            "{model}", param(name)
        ),
        st.sampled_from(("/v1beta/", "/v1/")),
        ids,
    )


ALL_MODELS = b.MODELS + b.EMBEDDING_MODELS
GEMINI = "/v1beta/models/{model}"
model_calls = st.one_of(
    _model_call("POST /v1/chat/completions", b.chat_requests),
    _model_call("POST /v1/messages", b.messages_requests),
    _model_call("POST /v1/responses", b.responses_requests),
    _model_call("POST /v1/embeddings", b.embeddings_requests, b.EMBEDDING_MODELS),
    _model_call("POST /v1/messages/count_tokens", b.count_tokens_requests),
    _model_call(f"POST {GEMINI}:generateContent", b.generate_requests),
    _model_call(f"POST {GEMINI}:streamGenerateContent", b.generate_requests),
    _model_call(f"POST {GEMINI}:streamGenerateContent?alt=sse", b.generate_requests),
    _model_call(f"POST {GEMINI}:countTokens", b.count_requests, ALL_MODELS),
    _model_call(f"POST {GEMINI}:embedContent", b.embed_requests, b.EMBEDDING_MODELS),
    _model_call(f"POST {GEMINI}:batchEmbedContents", b.batch_embed_requests, b.EMBEDDING_MODELS),
)
FREE = ("POST /v1/messages/count_tokens", f"POST {GEMINI}:countTokens")  # never billed


def _call(route: str, path: Any, body: Any = None, auths: Any = KEY_AUTHS) -> Any:
    """Calls of a route; `path` is the path or a strategy of paths."""
    paths = path if isinstance(path, st.SearchStrategy) else st.just(path)
    bodies = st.just(NO_BODY) if body is None else b.bodies(body)
    content = st.just(None) if body is None else CONTENT_TYPES
    return st.builds(
        Call, route=st.just(route), path=paths, body=bodies, auth=auths, content_type=content
    )


def _under(prefix: str, ids: st.SearchStrategy[str], suffix: str = "") -> Any:
    return ids.map(lambda text: f"{prefix}/{param(text)}{suffix}")


def _with_query(path: str, query: st.SearchStrategy[list[tuple[str, str]]]) -> Any:
    return query.map(lambda pairs: f"{path}?{urlencode(pairs)}" if pairs else path)


model_ids = st.sampled_from(ALL_MODELS) | b.path_ids
gemini_ids = model_ids | st.sampled_from(ALL_MODELS).map(lambda name: f"models/{name}")
key_calls = st.one_of(
    _call("GET /v1/models", _with_query("/v1/models", b.page_queries), auths=GEMINI_AUTHS),
    _call("GET /v1/models/{id}", _under("/v1/models", gemini_ids), auths=GEMINI_AUTHS),
    _call("GET /v1beta/models", _with_query("/v1beta/models", b.page_queries), auths=GEMINI_AUTHS),
    _call("GET /v1beta/models/{model}", _under("/v1beta/models", gemini_ids), auths=GEMINI_AUTHS),
    _call("GET /v1/responses/{id}", _under("/v1/responses", b.response_ids)),
    _call("DELETE /v1/responses/{id}", _under("/v1/responses", b.response_ids)),
    _call("GET /api/v1/me/account", _with_query("/api/v1/me/account", b.usage_queries)),
    _call("GET /api/v1/me/usage", _with_query("/api/v1/me/usage", b.usage_queries)),
    _call("GET /api/v1/me/notifications", "/api/v1/me/notifications"),
    _call("PUT /api/v1/me/notifications", "/api/v1/me/notifications", b.threshold_bodies),
    _call("POST /api/v1/me/webhooks", "/api/v1/me/webhooks", b.webhook_bodies),
    _call(
        "PATCH /api/v1/me/webhooks/{id}",
        _under("/api/v1/me/webhooks", b.path_ids),
        b.webhook_changes,
    ),
)

orgs = b.org_names | b.path_ids
ADMIN = "/api/v1/admin"
admin_calls = st.one_of(
    _call(f"POST {ADMIN}/users", f"{ADMIN}/users", b.new_users, ADMIN_AUTHS),
    _call(f"POST {ADMIN}/orgs", f"{ADMIN}/orgs", b.new_orgs, ADMIN_AUTHS),
    _call(
        f"POST {ADMIN}/orgs/{{org}}/members",
        _under(f"{ADMIN}/orgs", orgs, "/members"),
        b.new_members,
        ADMIN_AUTHS,
    ),
    _call(
        f"POST {ADMIN}/orgs/{{org}}/pause",
        _under(f"{ADMIN}/orgs", orgs, "/pause"),
        None,
        ADMIN_AUTHS,
    ),
    _call(
        f"POST {ADMIN}/orgs/{{org}}/resume",
        _under(f"{ADMIN}/orgs", orgs, "/resume"),
        None,
        ADMIN_AUTHS,
    ),
    _call(f"POST {ADMIN}/credits/topup", f"{ADMIN}/credits/topup", b.top_ups, ADMIN_AUTHS),
    _call(f"PUT {ADMIN}/notifications", f"{ADMIN}/notifications", b.thresholds, ADMIN_AUTHS),
    _call(f"POST {ADMIN}/keys", f"{ADMIN}/keys", b.new_keys, ADMIN_AUTHS),
    _call(
        f"POST {ADMIN}/keys/{{id}}/revoke",
        _under(f"{ADMIN}/keys", b.path_ids, "/revoke"),
        None,
        ADMIN_AUTHS,
    ),
)


# What comes back ----------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    content_type: str
    raw: bytes
    broken: str | None = None  # the connection failed before the answer ended

    def json(self) -> Any:
        return loads(self.raw)

    def text(self, limit: int = 1500) -> str:
        return self.raw[:limit].decode("utf-8", "replace")


@dataclass(frozen=True)
class NotJSON:
    start: bytes | str


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return NotJSON(raw[:200])


def envelope_problems(family: str, body: Any) -> list[str]:
    """How an error answer departs from the route's documented envelope."""
    if not isinstance(body, dict):
        return [f"the error answer is not a JSON object: {body!r:.200}"]
    error = body.get("error")
    if not isinstance(error, dict):
        return ["the error answer has no 'error' object"]
    if family == "gemini":
        return gemini_envelope_problems(body)
    problems = [f"error.{k} is not a string" for k in ("type", "message") if not _is_str(error, k)]
    if family == "openai":
        if set(error) != {"message", "type", "param", "code"}:
            problems.append(f"error has keys {sorted(error)}, not message/type/param/code")
        problems += [
            f"error.{k} is not a string or null"
            for k in ("param", "code")
            if not _opt_str(error, k)
        ]
    elif family == "anthropic":
        if body.get("type") != "error" or set(body) != {"type", "error"}:
            problems.append("not {'type': 'error', 'error': {...}}")
        if set(error) != {"type", "message"}:
            problems.append(f"error has keys {sorted(error)}, not type/message")
    else:
        if set(body) != {"error"} or not set(error) <= {"type", "message", "code"}:
            problems.append(f"keys {sorted(body)} / {sorted(error)}, not error: type/message")
        if "code" in error and not isinstance(error["code"], str):
            problems.append("error.code is not a string")
    return problems


GOOGLE_STATUSES = frozenset(gemini_errors.STATUSES.values()) | {"UNKNOWN"}


def gemini_envelope_problems(body: dict[str, Any]) -> list[str]:
    """Google's `{"error": {"code", "message", "status", "details"?}}` (google.rpc.Status)."""
    error = body["error"]
    problems = []
    if set(body) != {"error"} or not {"code", "message", "status"} <= set(error) <= {
        "code",
        "message",
        "status",
        "details",
    }:
        problems.append(f"keys {sorted(body)} / {sorted(error)}, not error: code/message/status")
    if not isinstance(error.get("code"), int) or not _is_str(error, "message"):
        problems.append("error.code is not an integer or error.message not a string")
    if error.get("status") not in GOOGLE_STATUSES:
        problems.append(f"error.status {error.get('status')!r} is not a canonical code")
    if not isinstance(error.get("details", []), list):
        problems.append("error.details is not a list")
    return problems


def _is_str(obj: dict[str, Any], key: str) -> bool:
    return isinstance(obj.get(key), str)


def _opt_str(obj: dict[str, Any], key: str) -> bool:
    return key in obj and (obj[key] is None or isinstance(obj[key], str))


def sse(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each server-sent event."""
    events = []
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def chat_stream_problems(answer: Answer) -> list[str]:
    events = sse(answer.raw)
    if not events or events[-1][1] != "[DONE]":
        last = loads(events[-1][1]) if events else None
        if isinstance(last, dict) and "error" in last:  # the upstream broke mid-answer
            return envelope_problems("openai", last)
        return ["the stream does not end with data: [DONE]"]
    problems = []
    for _, data in events[:-1]:
        problems += schema_errors("CreateChatCompletionStreamResponse", loads(data))
    return problems


def messages_stream_problems(answer: Answer) -> list[str]:
    events = [(name, loads(data)) for name, data in sse(answer.raw)]
    if not events or events[0][0] != "message_start" or not isinstance(events[0][1], dict):
        return ["the stream does not begin with message_start"]
    problems = [
        f"event {name!r} carries {data!r:.100}"
        for name, data in events
        if not isinstance(data, dict) or data.get("type") != name
    ]
    name, data = events[-1]
    if name == "error" and isinstance(data, dict):
        return problems + envelope_problems("anthropic", data)
    if name != "message_stop":
        problems.append(f"the stream ends with {name!r}, not message_stop")
    problems += message_problems(events[0][1].get("message"), streamed=True)
    return problems


def responses_stream_problems(answer: Answer) -> list[str]:
    events = [(name, loads(data)) for name, data in sse(answer.raw)]
    if not events:
        return ["the stream carries no events"]
    problems = [
        f"event {name!r} carries {data!r:.100}"
        for name, data in events
        if not isinstance(data, dict) or data.get("type") != name
    ]
    last = events[-1][0]
    if last not in ("response.completed", "response.incomplete", "error"):
        problems.append(f"the stream ends with {last!r}, not response.completed")
    for _, data in events:
        problems += schema_errors("ResponseStreamEvent", data)
    return problems


def message_problems(message: Any, *, streamed: bool = False) -> list[str]:
    if not isinstance(message, dict):
        return ["the answer is not a Message object"]
    problems = []
    if message.get("type") != "message" or message.get("role") != "assistant":
        problems.append("not type 'message' and role 'assistant'")
    content = message.get("content")
    if not isinstance(content, list) or not all(_is_str(c, "type") for c in content):
        problems.append("content is not a list of typed blocks")
    if not streamed and not content:
        problems.append("content is empty")
    usage = message.get("usage")
    if not isinstance(usage, dict) or not all(
        isinstance(usage.get(k), int) for k in ("input_tokens", "output_tokens")
    ):
        problems.append("usage lacks integer input_tokens and output_tokens")
    if not _is_str(message, "id") or not (
        message.get("stop_reason") is None or _is_str(message, "stop_reason")
    ):
        problems.append("id or stop_reason is not a string")
    return problems


def generate_problems(body: Any, *, final: bool = True) -> list[str]:
    """How `body` departs from a GenerateContentResponse as Google's SDK reads it (every
    field one it knows); a whole answer (`final`) has candidates and usageMetadata."""
    if not isinstance(body, dict):
        return [f"not a GenerateContentResponse: {body!r:.100}"]
    try:
        genai_types.GenerateContentResponse.model_validate(body)
    except ValidationError as exc:
        return [f"not a GenerateContentResponse: {exc.errors()[0]}"[:300]]
    candidates = body.get("candidates")
    if final and (not candidates or not isinstance(body.get("usageMetadata"), dict)):
        return ["a GenerateContentResponse without candidates or usageMetadata"]
    return []


def gemini_stream_problems(call: Call, answer: Answer) -> list[str]:
    """A stream's events (SSE `data:` lines with alt=sse, else one JSON array), each a
    GenerateContentResponse, the last an error in Gemini's envelope if the stream broke."""
    if call.route.endswith("?alt=sse"):
        if not answer.content_type.startswith("text/event-stream"):
            return [f"an alt=sse stream answered as {answer.content_type!r}"]
        events = [loads(data) for _, data in sse(answer.raw)]
    else:
        events = answer.json()
        if not isinstance(events, list):
            return [f"a stream without alt=sse is not a JSON array: {events!r:.100}"]
    if not events:
        return ["the stream carries no events"]
    last = events[-1]
    if isinstance(last, dict) and "error" in last:  # the upstream broke mid-answer
        events = events[:-1]
        problems = gemini_envelope_problems(last)
    else:
        problems = generate_problems(last, final=False)
        if not isinstance(last, dict) or not isinstance(last.get("usageMetadata"), dict):
            problems.append("the stream's last event has no usageMetadata")
    for event in events:
        problems += generate_problems(event, final=False)
    return problems


def vectors_problems(embeddings: Any) -> list[str]:
    if not isinstance(embeddings, list) or not embeddings:
        return ["no embeddings"]
    for embedding in embeddings:
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
            return [f"an embedding without a list of numbers as values: {embedding!r:.100}"]
    return []


def gemini_problems(call: Call, answer: Answer) -> list[str]:
    """A Gemini route's success shapes."""
    method = call.route.split(":")[-1]
    if method.startswith("streamGenerateContent"):
        return gemini_stream_problems(call, answer)
    body = answer.json()
    if not isinstance(body, dict):
        return [f"the answer is not a JSON object: {body!r:.200}"]
    if method == "generateContent":
        return generate_problems(body)
    if method == "countTokens":
        total = body.get("totalTokens")
        return [] if isinstance(total, int) and total >= 0 else ["no integer totalTokens"]
    if method == "embedContent":
        return vectors_problems([body.get("embedding")])
    if method == "batchEmbedContents":
        problems = vectors_problems(body.get("embeddings"))
        sent = loads(b.encode(call.body))
        asked = sent.get("requests") if isinstance(sent, dict) else None
        if not problems and isinstance(asked, list) and len(asked) != len(body["embeddings"]):
            problems.append(f"{len(body['embeddings'])} embeddings for {len(asked)} requests")
        return problems
    if call.route.endswith("/models"):
        models = body.get("models")
        if not isinstance(models, list):
            return ["a model list without models"]
        return [p for model in models for p in gemini_model_problems(model)]
    return gemini_model_problems(body)


def gemini_model_problems(model: Any) -> list[str]:
    if not isinstance(model, dict) or not str(model.get("name", "")).startswith("models/"):
        return [f"not a Gemini Model: {model!r:.100}"]
    methods = model.get("supportedGenerationMethods")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        return ["supportedGenerationMethods is not a list of names"]
    return []


def success_problems(call: Call, answer: Answer) -> list[str]:
    """How a 2xx answer departs from the route's success shape."""
    if call.gemini:
        return gemini_problems(call, answer)
    streamed = answer.content_type.startswith("text/event-stream")
    if call.route == "POST /v1/chat/completions":
        if streamed:
            return chat_stream_problems(answer)
        body = answer.json()
        problems = schema_errors("CreateChatCompletionResponse", body)
        sent = loads(b.encode(call.body))
        wanted = sent.get("model") if isinstance(sent, dict) else None
        if isinstance(body, dict) and body.get("model") != wanted:
            problems.append(f"answered for model {body.get('model')!r}, asked {wanted!r}")
        return problems
    if call.route == "POST /v1/messages":
        return messages_stream_problems(answer) if streamed else message_problems(answer.json())
    if call.route == "POST /v1/responses":
        if streamed:
            return responses_stream_problems(answer)
        return schema_errors("Response", answer.json())
    if call.route == "GET /v1/responses/{id}":
        return schema_errors("Response", answer.json())
    if call.route == "GET /v1/models":
        return schema_errors("ListModelsResponse", answer.json())
    if call.route == "GET /v1/models/{id}":
        return schema_errors("Model", answer.json())
    if call.route == "POST /v1/embeddings":
        return embeddings_problems(call, answer.json())
    if call.route == "POST /v1/messages/count_tokens":
        body = answer.json()
        if not isinstance(body, dict) or set(body) != {"input_tokens"}:
            return [f"not {{'input_tokens': N}}: {body!r:.100}"]
        tokens = body["input_tokens"]
        return [] if isinstance(tokens, int) and tokens >= 0 else ["input_tokens is no count"]
    body = answer.json()
    return [] if isinstance(body, dict) else [f"the answer is not a JSON object: {body!r:.200}"]


def embeddings_problems(call: Call, body: Any) -> list[str]:
    """A CreateEmbeddingResponse for the model asked; base64 vectors (which the reference's
    schema leaves out) as float32 arrays."""
    sent = loads(b.encode(call.body))
    sent = sent if isinstance(sent, dict) else {}
    if sent.get("encoding_format") == "base64" and isinstance(body, dict):
        body = copy.deepcopy(body)
        for item in body.get("data") if isinstance(body.get("data"), list) else ():
            if isinstance(item, dict) and isinstance(item.get("embedding"), str):
                item["embedding"] = float32s(item["embedding"])
    problems = schema_errors("CreateEmbeddingResponse", body)
    if isinstance(body, dict) and body.get("model") != sent.get("model"):
        problems.append(f"answered for model {body.get('model')!r}, asked {sent.get('model')!r}")
    return problems


def float32s(text: str) -> Any:
    """Little-endian float32s in base64, as a list; the text itself if it is not that."""
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return text
    return list(struct.unpack(f"<{len(data) // 4}f", data)) if len(data) % 4 == 0 else text


# Crashes the gateway logs ---------------------------------------------------------------------


class Crashes(logging.Handler):
    """Exceptions logged while a call ran (bytespike's 500 handler, uvicorn's ASGI errors)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if all(exc is not other for other in self.seen):
                self.seen.append(exc)


@contextlib.contextmanager
def capturing() -> Iterator[Crashes]:
    """Collect the exceptions logged while the fuzz runs. bytespike's and uvicorn's records go
    to the collector only: a long run logs thousands of tracebacks, and each failure's report
    names its own crash; anything else that logs an error is collected from the root too."""
    crashes = Crashes()
    saved = []
    for name in ("bytespike", "uvicorn"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers[:] = [crashes]
        logger.propagate = False
    root = logging.getLogger()
    root.addHandler(crashes)
    try:
        yield crashes
    finally:
        root.removeHandler(crashes)
        for logger, handlers, propagate in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate


def _innermost(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def crash_site(exc: BaseException) -> dict[str, Any]:
    """The exception and its deepest frame in src/ (the site), and the way there in src/."""
    exc = _innermost(exc)
    chain: list[str] = []
    for frame in extract_tb(exc.__traceback__):
        if "/bytespike/" not in frame.filename or frame.name.startswith("<"):
            continue  # other code, and comprehensions' own frames
        step = f"{frame.filename.rsplit('/bytespike/', 1)[1]}:{frame.lineno} {frame.name}"
        if chain and chain[-1].startswith(step):  # recursion: count it, once
            repeat = re.search(r" x(\d+)$", chain[-1])
            chain[-1] = f"{step} x{int(repeat.group(1)) + 1 if repeat else 2}"
        else:
            chain.append(step)
    where = re.sub(r" x\d+$", "", chain[-1]) if chain else "no frame in src/bytespike"
    site = f"{type(exc).__name__} at bytespike/{where}"
    if len(chain) > 16:  # deep recursion through more than one line
        chain = [*chain[:8], f"... {len(chain) - 16} more ...", *chain[-8:]]
    return {"site": site, "message": str(exc)[:300], "through": chain}


# Faults: one exception class per signature ----------------------------------------------------

_FAULTS: dict[str, type[AssertionError]] = {}


def fault(signature: str) -> type[AssertionError]:
    """The class of a failure; Hypothesis tells bugs apart by exception type (and place), so
    a class per signature lets it report and shrink every distinct failure."""
    if signature not in _FAULTS:
        _FAULTS[signature] = type(f"GatewayFault[{signature}]", (AssertionError,), {})
    return _FAULTS[signature]


def _gist(answer: Answer) -> str:
    """A 5xx answer's type and message, without the parts that vary between calls."""
    body = answer.json()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return answer.text(60)
    message = re.sub(r"\d+|'[^']*'", "_", str(error.get("message")))[:60]
    return f"{error.get('type')}: {message}"


# The fuzzer -----------------------------------------------------------------------------------

SERVED_HEADROOM = 990  # frames a request has under `bytespike serve` (limit 1,000, ~10 used)


@contextlib.contextmanager
def served_recursion_limit() -> Iterator[None]:
    """Give the gateway the recursion headroom it has when served. Hypothesis raises the
    limit by 2,000 frames while a test runs, and the gateway runs in the test's thread: a
    body nested deep enough would then overflow the C stack (a segfault that ends the whole
    run) where a served gateway raises RecursionError."""
    frame: FrameType | None = sys._getframe()
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + SERVED_HEADROOM)
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


@dataclass(frozen=True)
class Problem:
    kind: str  # what went wrong, the same for every call it goes wrong on the same way
    detail: str


@dataclass
class Books:
    available: int
    pending: set[int]
    problems: list[str]


@dataclass(repr=False)  # Hypothesis prints it with every falsifying example
class Fuzz:
    ctx: Context
    http: httpx.AsyncClient
    key: str
    key_id: int
    spare_key_id: int  # a revocation the fuzz generates for our key hits this one instead
    wallet_id: int
    crashes: Crashes

    def __repr__(self) -> str:
        return f"Fuzz({self.http.base_url}, {self.ctx.settings.database_url.split(':')[0]})"

    def headers(self, call: Call) -> list[tuple[bytes, bytes]]:
        credential = {
            "key": [(b"authorization", f"Bearer {self.key}")],
            "x-api-key": [(b"x-api-key", self.key)],
            "x-goog-api-key": [(b"x-goog-api-key", self.key)],
            "query": [],  # the key is in the path (`sent_path`)
            "admin": [(b"authorization", f"Bearer {ADMIN_TOKEN}")],
            "none": [],
            "wrong": [(b"authorization", "Bearer bsk-not-a-key")],
        }[call.auth]
        headers = [(name, value.encode()) for name, value in credential]
        if call.content_type:
            headers.append((b"content-type", call.content_type.encode()))
        if call.beta:
            headers.append((b"anthropic-beta", call.beta.encode()))  # not always ASCII
        return headers

    def guarded(self, call: Call) -> Call:
        """The call, unless it would revoke the key the fuzz runs on."""
        if not call.route.endswith("/revoke"):
            return call
        raw = unquote(call.path.split("/")[-2])
        try:
            target = TypeAdapter(int).validate_python(raw)
        except ValidationError:
            return call
        if target != self.key_id:
            return call
        return Call(call.route, f"{ADMIN}/keys/{self.spare_key_id}/revoke", auth=call.auth)

    async def books(self) -> Books:
        async with self.ctx.db.read() as conn:
            problems = await ledger.verify(conn, self.wallet_id)
            balances = await ledger.balances(conn, self.wallet_id)
            pending = await conn.execute(sa.select(holds.c.id).where(holds.c.status == "pending"))
            return Books(balances.available, set(pending.scalars()), problems)

    def sent_path(self, call: Call) -> str:
        if call.auth != "query":
            return call.path
        return f"{call.path}{'&' if '?' in call.path else '?'}{urlencode({'key': self.key})}"

    async def send(self, call: Call) -> Answer:
        content = b.encode(call.body)
        request = self.http.build_request(
            call.method, self.sent_path(call), content=content or None, headers=self.headers(call)
        )
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            return Answer(0, "", b"", broken=repr(exc))
        try:
            raw = await response.aread()
        except httpx.HTTPError as exc:
            return Answer(response.status_code, "", b"", broken=repr(exc))
        finally:
            await response.aclose()
        return Answer(response.status_code, response.headers.get("content-type", ""), raw)

    async def check(self, call: Call) -> None:
        call = self.guarded(call)
        before = await self.books()
        self.crashes.seen.clear()
        with served_recursion_limit():
            answer = await self.send(call)
        after = await self.books()
        problems = self.judge(call, answer, before, after)
        if problems or self.crashes.seen:
            self.fail(call, answer, problems)

    def judge(self, call: Call, answer: Answer, before: Books, after: Books) -> list[Problem]:
        problems = []
        if answer.broken:
            problems.append(Problem("connection broke mid-answer", answer.broken))
        elif answer.status >= 500:
            problems.append(Problem(f"{answer.status} {_gist(answer)}", answer.text(200)))
        if 200 <= answer.status < 300 and not answer.broken:
            problems += [Problem("success shape", p) for p in success_problems(call, answer)[:5]]
        elif answer.status >= 400:
            found = envelope_problems(call.family, answer.json())
            problems += [Problem("error envelope", p) for p in found]
        if left := after.pending - before.pending:
            problems.append(Problem("pending hold left", f"holds {sorted(left)}"))
        if after.problems and not before.problems:
            problems.append(Problem("ledger.verify", "; ".join(after.problems)))
        if not 200 <= answer.status < 300 and after.available != before.available:
            moved = after.available - before.available
            problems.append(Problem("available moved on a refusal", f"by {moved} micros"))
        elif call.route in FREE and after.available != before.available:
            moved = after.available - before.available
            problems.append(Problem("available moved on a free call", f"by {moved} micros"))
        return problems

    def fail(self, call: Call, answer: Answer, problems: list[Problem]) -> None:
        crashes = [crash_site(exc) for exc in self.crashes.seen]
        what = crashes[0]["site"] if crashes else problems[0].kind
        signature = f"{call.route}: {what}"
        body = b.encode(call.body)
        report = {
            "signature": signature,
            "route": call.route,
            "path": call.path,
            "model": call.model,
            "auth": call.auth,
            "body": body[:4000].decode("utf-8", "replace"),
            "body_bytes": len(body),
            "status": answer.status,
            "answer": answer.text(),
            "problems": [f"{p.kind}: {p.detail}" for p in problems],
            "crashes": crashes,
        }
        if LOG:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(json.dumps(report) + "\n")
        if "*" in SKIP or any(known in signature for known in SKIP):
            return
        raise fault(signature)(json.dumps(report, indent=1, ensure_ascii=False))


@pytest.fixture
async def fuzz(ctx: Context, fakes: Upstreams) -> AsyncIterator[Fuzz]:
    """Ada, $100 in her wallet, a key for the whole catalog that no rate limit stops, a
    webhook endpoint; Bob, enterprise, in the org Dosia AI; a served gateway."""
    await make_user(ctx, "ada")
    await top_up(ctx, "100", user="ada")
    key = await make_key(ctx, "ada", rate_limit=MAX_RATE_LIMIT)
    spare = await make_key(ctx, "ada")
    await make_org(ctx, "Dosia AI")
    await make_user(ctx, "bob", tier="enterprise")
    await add_member(ctx, "Dosia AI", "bob")
    wallet_id = await wallet_of(ctx, user="ada")
    async with (
        gateway(ctx, fakes) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        hook = {"url": b.WEBHOOK_URL, "events": ["balance.topped_up"]}
        auth = {"Authorization": f"Bearer {key['key']}"}
        assert (await http.post("/api/v1/me/webhooks", json=hook, headers=auth)).status_code == 201
        with capturing() as crashes:
            yield Fuzz(ctx, http, key["key"], key["id"], spare["id"], wallet_id, crashes)


def fuzzing(examples: int) -> Callable[[Any], Any]:
    """Hypothesis settings for a fuzz test: fixed examples unless BYTESPIKE_FUZZ_SEED."""
    configured = settings(
        max_examples=max(1, examples),
        derandomize=SEED is None,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # one gateway and wallet for every example
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )

    def apply(test: Any) -> Any:
        test = configured(test)
        return seed(int(SEED))(test) if SEED is not None else test

    return apply


@fuzzing(EXAMPLES)
@given(call=model_calls)
async def test_model_routes(fuzz: Fuzz, call: Call) -> None:
    """Chat Completions, Messages (and its token count), Responses, embeddings and Gemini's
    methods, every catalog model of the route's kind, streaming or not."""
    await fuzz.check(call)


@fuzzing(EXAMPLES // 2)
@given(call=key_calls)
async def test_key_routes(fuzz: Fuzz, call: Call) -> None:
    """/v1/models, /v1beta/models (keys as every SDK sends them) and the key holder's
    /api/v1/me/* routes."""
    await fuzz.check(call)


@fuzzing(EXAMPLES // 2)
@given(call=admin_calls)
async def test_admin_routes(fuzz: Fuzz, call: Call) -> None:
    """The admin API, with generated bodies and path params."""
    await fuzz.check(call)
