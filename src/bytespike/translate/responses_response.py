"""OpenAI chat.completion → OpenAI Response object, for Responses clients of providers that
answer in the chat shape; and the parts of a Response the stream translator shares.

Pure functions. Failure policy: an answer that is not a chat completion raises
UpstreamMalformed (the proxy bills its reported usage and releases the rest of the hold).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bytespike.translate.responses_request import HOSTED, ToolNames
from bytespike.upstream.base import JSONObject, UpstreamMalformed, usage_from_openai

# A chat finish_reason that cut the answer short, as the Response's incomplete_details.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def shell(body: JSONObject, *, response_id: str, model: str, created_at: int) -> JSONObject:
    """A Response in progress for the request `body`: what it echoes of the request, no
    output yet. `model` is the client's name for the model."""
    text = body.get("text") or {}
    reasoning = body.get("reasoning") or {}
    out: JSONObject = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": "default",
        "store": body.get("store") is not False,
        "temperature": _or(body.get("temperature"), 1.0),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium",
        },
        "tool_choice": _or(body.get("tool_choice"), "auto"),
        "tools": [_tool(t) for t in body.get("tools") or () if t["type"] not in HOSTED],
        "top_p": _or(body.get("top_p"), 1.0),
        "truncation": body.get("truncation") or "disabled",
        "metadata": body.get("metadata") or {},
    }
    if body.get("user") is not None:
        out["user"] = body["user"]
    return out


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _tool(tool: JSONObject) -> JSONObject:
    if tool["type"] != "function":
        return tool
    return {"parameters": None, "strict": None, **tool}


def usage(chat_usage: Any) -> JSONObject | None:
    """The Response `usage` for a chat `usage` object (None if there is none). Reasoning
    tokens are a part of the output tokens, as in both APIs: never added twice. Classes
    the Responses shape has no field for ride where upstream/openai_responses.py's
    `usage_from_responses` reads them back (the 1-hour part of the cache writes)."""
    found = usage_from_openai(chat_usage) if isinstance(chat_usage, dict) else None
    if found is None:
        return None
    details: JSONObject = {
        "cached_tokens": found.cached_tokens,
        "cache_write_tokens": found.cache_write_tokens,
    }
    if found.cache_write_1h_tokens:
        details["cache_write_1h_tokens"] = found.cache_write_1h_tokens
    if found.tool_prompt_tokens:
        details["tool_use_prompt_tokens"] = found.tool_prompt_tokens
    out: JSONObject = {
        "input_tokens": found.input_tokens,
        "input_tokens_details": details,
        "output_tokens": found.output_tokens,
        "output_tokens_details": {"reasoning_tokens": found.reasoning_tokens},
        "total_tokens": found.input_tokens + found.output_tokens,
    }
    if found.web_search_requests:
        out["server_tool_use"] = {"web_search_requests": found.web_search_requests}
    return out


def item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def text_part(text: str) -> JSONObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item: str, text: str, status: str) -> JSONObject:
    return {
        "id": item,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [text_part(text)],
    }


def call_item(item: str, call: JSONObject, names: ToolNames, status: str) -> JSONObject:
    """A Response function_call item for a chat tool call (`id`, `function.name/arguments`)."""
    function = call.get("function") or {}
    namespace, name = names.split(str(function.get("name") or ""))
    out: JSONObject = {
        "id": item,
        "type": "function_call",
        "status": status,
        "call_id": str(call.get("id") or item_id("call")),
        "name": name,
        "arguments": str(function.get("arguments") or ""),
    }
    if namespace is not None:
        out["namespace"] = namespace
    return out


def finished(response: JSONObject, finish_reason: Any, chat_usage: Any) -> JSONObject:
    """`response` (its output in place) completed, or incomplete if the answer was cut."""
    reason = INCOMPLETE.get(finish_reason)
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    if not reason:
        response["completed_at"] = int(time.time())
    reported = usage(chat_usage)
    if reported is not None:
        response["usage"] = reported
    return response


def from_completion(completion: JSONObject, response: JSONObject, names: ToolNames) -> JSONObject:
    """The Response for a chat.completion, into `response` (a `shell`)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamMalformed("the upstream answered with a completion without choices")
    reply = choices[0].get("message") or {}
    finish = choices[0].get("finish_reason")
    status = "incomplete" if finish in INCOMPLETE else "completed"
    text = reply.get("content") or reply.get("refusal")
    if text:
        response["output"].append(message_item(item_id("msg"), str(text), status))
    for call in reply.get("tool_calls") or ():
        if isinstance(call, dict):
            response["output"].append(call_item(item_id("fc"), call, names, "completed"))
    return finished(response, finish, completion.get("usage"))


def output_bytes(response: JSONObject) -> int:
    """UTF-8 bytes of what a Response says (its text and call arguments): for an estimate
    when the upstream reported no usage."""
    total = 0
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        pieces = [item.get("arguments")]
        pieces += [part.get("text") for part in item.get("content") or () if isinstance(part, dict)]
        total += sum(len(piece.encode()) for piece in pieces if isinstance(piece, str))
    return total
