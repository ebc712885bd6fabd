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

from bytespike.upstream.base import (
    JSONObject,
    UpstreamMalformed,
    Usage,
    arguments_object,
    usage_from_openai,
)

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
    """Gemini's usageMetadata for an OpenAI `usage` object: thoughts apart from the
    candidates, tool-use prompts apart from the prompt (upstream/gemini_response.usage_of
    reads them back the same way)."""
    found = usage_from_openai(usage) or Usage(0, 0)
    out: JSONObject = {
        "promptTokenCount": found.prompt_tokens,
        "candidatesTokenCount": max(found.output_tokens - found.reasoning_tokens, 0),
        "totalTokenCount": found.input_tokens + found.output_tokens,
    }
    counts = {
        "thoughtsTokenCount": found.reasoning_tokens,
        "cachedContentTokenCount": found.cached_tokens,
        "toolUsePromptTokenCount": found.tool_prompt_tokens,
    }
    return out | {name: count for name, count in counts.items() if count}


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
