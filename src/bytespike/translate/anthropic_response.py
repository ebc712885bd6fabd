"""Whole answers both ways: Anthropic Message ↔ OpenAI chat.completion, and the stop-reason
and usage vocabularies the stream translators share.

Pure functions. Failure policy: an upstream answer that is not its documented shape raises
UpstreamMalformed (the proxy releases the hold; nothing half-translated reaches a client).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bytespike.upstream.base import (
    JSONObject,
    UpstreamMalformed,
    Usage,
    arguments_object,
    openai_usage,
    usage_from_anthropic,
    usage_from_openai,
)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason (unknown ones read as a stop)."""
    return FINISH_REASONS.get(stop_reason, "stop")


def stop_reason(finish: Any) -> str:
    """Anthropic's stop_reason for an OpenAI finish_reason."""
    return STOP_REASONS.get(finish, "end_turn")


def anthropic_usage(usage: Usage) -> JSONObject:
    """Anthropic's usage object: its input_tokens leave out the tokens read from and written
    to a cache; the writes' split by lifetime and server tool calls when there are any."""
    out: JSONObject = {
        "input_tokens": usage.uncached_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
    if usage.cache_write_tokens:
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens - usage.cache_write_1h_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        }
    if usage.web_search_requests:
        out["server_tool_use"] = {"web_search_requests": usage.web_search_requests}
    return out


def is_message(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("type") == "message"
        and isinstance(body.get("content"), list)
        and isinstance(body.get("usage"), dict)
    )


def message_to_openai(message: JSONObject, *, created: int | None = None) -> JSONObject:
    """The OpenAI chat.completion for an Anthropic Message."""
    if not is_message(message):
        raise UpstreamMalformed("Anthropic answered with something that is not a Message")
    texts: list[str] = []
    calls: list[JSONObject] = []
    for block in message["content"]:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        # Thinking and server-tool blocks have no place in a chat.completion.
    reply: JSONObject = {"role": "assistant", "content": "".join(texts) or None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    usage = usage_from_anthropic(message["usage"]) or Usage(0, 0)
    return {
        "id": str(message.get("id") or ""),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": str(message.get("model") or ""),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason(message.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(usage),
    }


def message_id(completion_id: Any) -> str:
    """A Message id traceable to the completion it came from."""
    raw = str(completion_id or "")
    return "msg_" + (raw.removeprefix("chatcmpl-") or "gateway")


def reasoning_text(part: JSONObject) -> str | None:
    """The reasoning an OpenAI-compatible message or delta carries, if any: vLLM, DeepSeek and
    others send `reasoning_content`, OpenRouter and Ollama `reasoning` (OpenAI itself none)."""
    for name in ("reasoning_content", "reasoning"):
        value = part.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def thinking_block(text: str) -> JSONObject:
    """Reasoning as Anthropic's thinking block. No signature: only Anthropic can sign one,
    and the translation drops thinking blocks a client sends back."""
    return {"type": "thinking", "thinking": text, "signature": ""}


def openai_to_message(completion: JSONObject, model: str, *, thinking: bool = False) -> JSONObject:
    """The Anthropic Message for an OpenAI chat.completion; `model` is the client's name.
    With `thinking` (the client asked to see it), the reasoning leads as a thinking block."""
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise UpstreamMalformed("the upstream answered with a completion without choices")
    reply = choices[0].get("message") or {}
    content: list[JSONObject] = []
    reasoning = reasoning_text(reply) if thinking else None
    if reasoning:
        content.append(thinking_block(reasoning))
    text = reply.get("content") or reply.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    for call in reply.get("tool_calls") or []:
        content.append(tool_use_block(call))
    reason = stop_reason(choices[0].get("finish_reason"))
    if reply.get("refusal") and not reply.get("content"):
        reason = "refusal"
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": anthropic_usage(usage_from_openai(completion.get("usage")) or Usage(0, 0)),
    }


def tool_use_block(
    call: JSONObject, input_of: Callable[[Any], JSONObject] | None = None
) -> JSONObject:
    """An OpenAI tool call as Anthropic's `tool_use` block; `input_of` reads its arguments
    (by default as the model's, whose bad arguments are a malformed answer)."""
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": call.get("id"),
        "name": function.get("name"),
        "input": (input_of or tool_input)(function.get("arguments")),
    }


def tool_input(arguments: Any) -> JSONObject:
    """A tool call's arguments as the object Anthropic clients expect."""
    value = arguments_object(arguments)
    if value is None:
        raise UpstreamMalformed("the model called a tool with arguments that are not a JSON object")
    return value
