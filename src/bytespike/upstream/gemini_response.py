"""Gemini `GenerateContentResponse` → OpenAI chat.completion, and a stream of them →
chat.completion.chunks; Gemini error bodies → UpstreamError. For GeminiProvider.

Pure functions (and one stateful, IO-free stream translator). Failure policy: a 2xx body
that is not a GenerateContentResponse is `UpstreamMalformed`; an error object arriving
inside a stream is an `UpstreamError`. Thinking ("thought") parts are not shown to the
client but their tokens are billed as output, as Google bills them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from bytespike.errors import STATUS_TYPES
from bytespike.upstream import transport
from bytespike.upstream.base import (
    JSONObject,
    UpstreamError,
    UpstreamMalformed,
    Usage,
    openai_usage,
    tokens,
)
from bytespike.upstream.gemini_request import SIGNATURE_MARK

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def error(status: int, raw: bytes) -> UpstreamError:
    """`{"error": {"code", "message", "status"}}` (a list of one when not streaming via SSE)."""
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    detail = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(detail, dict) and detail.get("message"):
        message = str(detail["message"])
    else:
        message = transport.body_text(raw) or f"Gemini answered {status}"
    return UpstreamError(status, message, error_type=STATUS_TYPES.get(status))


def parse(raw: bytes | str) -> JSONObject:
    """A GenerateContentResponse from a 2xx body or stream event."""
    body = transport.json_object(raw, "Gemini's answer")
    if isinstance(body.get("error"), dict):  # sent in place of an event mid-stream
        detail = body["error"]
        code = detail.get("code") if isinstance(detail.get("code"), int) else 500
        message = str(detail.get("message") or "Gemini failed mid-stream")
        raise UpstreamError(code, message, error_type=STATUS_TYPES.get(code))
    candidates = body.get("candidates", [])
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        raise UpstreamMalformed("Gemini's candidates is not a list of objects")
    if not body.get("candidates") and not _blocked(body) and "usageMetadata" not in body:
        raise UpstreamMalformed("Gemini's answer has neither candidates nor usage")
    return body


def completion(body: JSONObject, *, model: str) -> JSONObject:
    """The chat.completion for a whole GenerateContentResponse."""
    if not body.get("candidates") and not _blocked(body):
        raise UpstreamMalformed("Gemini's answer has no candidates")
    text, calls, finish = _candidate(body)
    message: JSONObject = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    out: JSONObject = {
        "id": _completion_id(body),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    usage = usage_of(body.get("usageMetadata"), web_searches(body))
    if usage is not None:
        out["usage"] = _openai_usage(usage)
    return out


def usage_of(metadata: Any, searches: int = 0) -> Usage | None:
    """Thinking is billed as output; tool-use prompt tokens (results of Google-run tools
    fed back to the model) as input, outside the prompt whose size picks the tier;
    `promptTokenCount` includes the cached content. `searches`: the Google Search queries
    grounding ran (`web_searches`), billed per query."""
    if not isinstance(metadata, dict) or "promptTokenCount" not in metadata:
        return None
    tool_prompt = tokens(metadata, "toolUsePromptTokenCount")
    thoughts = tokens(metadata, "thoughtsTokenCount")
    return Usage(
        input_tokens=tokens(metadata, "promptTokenCount") + tool_prompt,
        output_tokens=tokens(metadata, "candidatesTokenCount") + thoughts,
        cached_tokens=tokens(metadata, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
        tool_prompt_tokens=tool_prompt,
        web_search_requests=searches,
    )


def web_searches(body: JSONObject) -> int:
    """The Google Search queries a GenerateContentResponse's grounding ran (each candidate's
    `groundingMetadata.webSearchQueries`; a stream sends them once)."""
    count = 0
    for candidate in body.get("candidates") or ():
        grounding = candidate.get("groundingMetadata") if isinstance(candidate, dict) else None
        queries = grounding.get("webSearchQueries") if isinstance(grounding, dict) else None
        count += len(queries) if isinstance(queries, list) else 0
    return count


class StreamTranslator:
    """Turns the GenerateContentResponses of a `streamGenerateContent?alt=sse` call into
    chat.completion.chunks: `chunks(event)` per event, then `last()` for the usage chunk.
    Every Gemini event repeats the running usage; the last one holds the totals."""

    def __init__(self, *, model: str) -> None:
        self._header: JSONObject = {
            "id": "",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self._metadata: JSONObject | None = None
        self._searches = 0  # grounding's queries, as the event that reports them says
        self._calls = 0  # tool calls sent so far: the next one's index
        self._started = False
        self.finished = False  # a finishReason came: the answer is whole

    def chunks(self, body: JSONObject) -> list[JSONObject]:
        if not self._header["id"]:
            self._header["id"] = _completion_id(body)
        if isinstance(body.get("usageMetadata"), dict):
            self._metadata = body["usageMetadata"]
        self._searches = max(self._searches, web_searches(body))
        if not body.get("candidates") and not _blocked(body):
            return []  # a usage-only event
        text, calls, finish = _candidate(body)
        delta: JSONObject = {}
        if text:
            delta["content"] = text
        if calls:
            delta["tool_calls"] = [{"index": self._calls + i, **c} for i, c in enumerate(calls)]
            self._calls += len(calls)
        end: str | None = None
        if _finish_reason(body) is not None:
            # A call may have come in an earlier event than the finishReason.
            end = "tool_calls" if self._calls and finish == "stop" else finish
        self.finished = self.finished or end is not None
        if not delta and end is None:
            return []  # e.g. only thinking, or an empty part carrying a thought signature
        if not self._started:
            delta = {"role": "assistant", **delta}
            self._started = True
        return [{**self._header, "choices": [{"index": 0, "delta": delta, "finish_reason": end}]}]

    def usage(self) -> Usage | None:
        """The usage Gemini reported last (the running total, until the stream ends)."""
        return usage_of(self._metadata, self._searches)

    def last(self) -> JSONObject | None:
        """The closing usage chunk, or None when Gemini never reported usage."""
        usage = self.usage()
        if usage is None:
            return None
        return {**self._header, "choices": [], "usage": _openai_usage(usage)}


def _candidate(body: JSONObject) -> tuple[str | None, list[JSONObject], str]:
    """(text, tool calls, OpenAI finish_reason) of the first candidate."""
    candidates = body.get("candidates") or []
    if not candidates:  # the prompt itself was blocked
        return None, [], "content_filter"
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    texts = [p["text"] for p in parts if "text" in p and not p.get("thought")]
    calls = [_tool_call(p) for p in parts if "functionCall" in p]
    reason = _finish_reason(body)
    finish = FINISH_REASONS.get(reason or "STOP", "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    return ("".join(texts) if texts or not calls else None), calls, finish


def _finish_reason(body: JSONObject) -> str | None:
    candidates = body.get("candidates") or []
    if not candidates:
        return "SAFETY" if _blocked(body) else None
    reason = candidates[0].get("finishReason")
    return str(reason) if reason else None


def _tool_call(part: JSONObject) -> JSONObject:
    call = part["functionCall"]
    call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")
    if part.get("thoughtSignature"):
        call_id += SIGNATURE_MARK + str(part["thoughtSignature"])
    arguments = orjson.dumps(call.get("args") or {}).decode()
    function = {"name": call.get("name"), "arguments": arguments}
    return {"id": call_id, "type": "function", "function": function}


def _blocked(body: JSONObject) -> bool:
    """Gemini refused the prompt itself: no candidates, a promptFeedback.blockReason."""
    feedback = body.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _completion_id(body: JSONObject) -> str:
    return f"chatcmpl-{body.get('responseId') or uuid.uuid4().hex}"


def _openai_usage(usage: Usage) -> JSONObject:
    out = openai_usage(usage)
    out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out
