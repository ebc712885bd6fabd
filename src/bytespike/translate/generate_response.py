"""OpenAI chat.completion → Gemini `GenerateContentResponse`, and a stream of
chat.completion.chunks → a stream of them, for Gemini clients of other providers' models.

Pure functions and one stateful, IO-free stream translator. Failure policy: a tool call
whose arguments are not a JSON object cannot be a Gemini functionCall: `UpstreamMalformed`.
Usage maps onto `usageMetadata`: OpenAI's reasoning tokens are Gemini's thoughts, reported
apart from the candidates' tokens (both are output, billed as such).
"""

from __future__ import annotations

import uuid
from typing import Any

from bytespike.upstream.base import JSONObject, UpstreamMalformed, arguments_object, tokens

FINISH_REASONS = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "tool_calls": "STOP",
    "function_call": "STOP",
}


def completion_to_generate(completion: JSONObject, model_id: str) -> JSONObject:
    """The GenerateContentResponse for a whole chat.completion."""
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    parts: list[JSONObject] = []
    if message.get("content"):
        parts.append({"text": message["content"]})
    parts += [function_call(call) for call in message.get("tool_calls") or ()]
    reason = FINISH_REASONS.get(choice.get("finish_reason") or "stop", "OTHER")
    out = _response(_candidate(parts or [{"text": ""}], reason), model_id, completion.get("id"))
    if isinstance(completion.get("usage"), dict):
        out["usageMetadata"] = usage_metadata(completion["usage"])
    return out


def function_call(call: JSONObject) -> JSONObject:
    function = call.get("function") or {}
    args = arguments_object(function.get("arguments"))
    if args is None:
        raise UpstreamMalformed("the model called a tool with arguments that are not an object")
    named: JSONObject = {"name": function.get("name"), "args": args}
    return {"functionCall": {"id": call["id"], **named} if call.get("id") else named}


def usage_metadata(usage: JSONObject) -> JSONObject:
    prompt, completion = tokens(usage, "prompt_tokens"), tokens(usage, "completion_tokens")
    details = usage.get("completion_tokens_details")
    thoughts = tokens(details, "reasoning_tokens") if isinstance(details, dict) else 0
    cached = usage.get("prompt_tokens_details")
    out: JSONObject = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": max(completion - thoughts, 0),
        "totalTokenCount": prompt + completion,
    }
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    if isinstance(cached, dict) and tokens(cached, "cached_tokens"):
        out["cachedContentTokenCount"] = tokens(cached, "cached_tokens")
    return out


class ChunksToGenerate:
    """Turns chat.completion.chunks into GenerateContentResponse events: text as it comes
    (`feed`), tool calls whole (Gemini sends a functionCall in one piece) with the finish
    reason and usage in the closing event (`finish`)."""

    def __init__(self, model_id: str) -> None:
        self._model_id = model_id
        self._id: str | None = None
        self._calls: dict[int, JSONObject] = {}  # by the stream's index, arguments so far
        self._finish: str | None = None
        self._usage: JSONObject | None = None

    def feed(self, chunk: JSONObject) -> list[JSONObject]:
        self._id = self._id or chunk.get("id")
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        events = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                candidate = {"content": {"role": "model", "parts": [{"text": delta["content"]}]}}
                events.append(_response({**candidate, "index": 0}, self._model_id, self._id))
            for call in delta.get("tool_calls") or ():
                self._add(call)
            self._finish = choice.get("finish_reason") or self._finish
        return events

    def finish(self) -> list[JSONObject]:
        parts = [function_call(call) for _, call in sorted(self._calls.items())]
        reason = FINISH_REASONS.get(self._finish or "stop", "OTHER")
        out = _response(_candidate(parts or [{"text": ""}], reason), self._model_id, self._id)
        if self._usage is not None:
            out["usageMetadata"] = usage_metadata(self._usage)
        return [out]

    def _add(self, call: JSONObject) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        known = self._calls.setdefault(index, {"id": None, "function": {"arguments": ""}})
        known["id"] = known["id"] or call.get("id")
        if function.get("name"):
            known["function"]["name"] = function["name"]
        known["function"]["arguments"] += function.get("arguments") or ""


def _candidate(parts: list[JSONObject], reason: str) -> JSONObject:
    return {"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": 0}


def _response(candidate: JSONObject, model_id: str, response_id: Any) -> JSONObject:
    return {
        "candidates": [candidate],
        "modelVersion": model_id,
        "responseId": str(response_id or uuid.uuid4().hex),
    }
