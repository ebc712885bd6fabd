"""OpenAI Chat Completions request → Anthropic Messages request, for AnthropicProvider.

Pure functions. Failure policy: input Anthropic cannot express (several choices, audio,
unparsable tool arguments) raises InvalidRequest with the reason, before any upstream call.
OpenAI-only knobs with no Messages equivalent (a json_object response_format, seed,
logprobs, penalties, stream_options) are not sent. `reasoning_effort` becomes
`output_config.effort` and a json_schema response_format `output_config.format`; thinking
itself is not switched on (its signed blocks could not travel back through the OpenAI shape).
"""

from __future__ import annotations

from typing import Any

from bytespike.errors import InvalidRequest
from bytespike.translate.anthropic_response import tool_use_block
from bytespike.upstream.base import JSONObject, arguments_object


def openai_request_to_messages(body: JSONObject) -> JSONObject:
    """The Anthropic request for an OpenAI chat request (`max_completion_tokens` set)."""
    if (body.get("n") or 1) != 1:
        raise InvalidRequest("n: Anthropic models return one choice; n must be 1")
    system, turns = _split_system(_messages(body))
    out: JSONObject = {
        "model": body.get("model"),
        "messages": _alternate([_turn(m) for m in turns]),
    }
    limit = _max_tokens(body)
    if limit is not None:  # else the gateway sets it once the hold has chosen it
        out["max_tokens"] = limit
    if system:
        out["system"] = system
    if body.get("temperature") is not None:
        # OpenAI's range is 0-2, Anthropic's 0-1; above 1 means "as random as it gets".
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    config = _output_config(body)
    if config:
        out["output_config"] = config
    if body.get("tools"):
        out["tools"] = [_tool(t) for t in body["tools"]]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice:
            out["tool_choice"] = choice
    if body.get("stream"):
        out["stream"] = True
    return out


def _messages(body: JSONObject) -> list[JSONObject]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: a non-empty list is required")
    if not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("messages: every message must be an object")
    return messages


def _max_tokens(body: JSONObject) -> int | None:
    value = body.get("max_completion_tokens")
    value = body.get("max_tokens") if value is None else value
    if value is not None and (not isinstance(value, int) or value < 1):
        raise InvalidRequest("max_completion_tokens: a positive integer is required")
    return value


def _split_system(messages: list[JSONObject]) -> tuple[list[JSONObject], list[JSONObject]]:
    """System and developer messages become Anthropic's top-level `system` text blocks,
    wherever they stand (Anthropic has no system turn)."""
    system: list[JSONObject] = []
    turns: list[JSONObject] = []
    for message in messages:
        if message.get("role") in ("system", "developer"):
            text = _text_of(message.get("content"), "system")
            if text:
                system.append({"type": "text", "text": text})
        else:
            turns.append(message)
    return system, turns


def _text_of(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        if len(parts) == len(content) and all(p.get("type") == "text" for p in content):
            return "".join(parts)
    raise InvalidRequest(f"{where} message content must be text")


def _turn(message: JSONObject) -> JSONObject:
    role = message.get("role")
    if role == "user":
        return {"role": "user", "content": _user_blocks(message.get("content"))}
    if role == "assistant":
        return {"role": "assistant", "content": _assistant_blocks(message)}
    if role == "tool":
        return {"role": "user", "content": [_tool_result(message)]}
    raise InvalidRequest(f"messages: unsupported role {role!r}")


def _user_blocks(content: Any) -> list[JSONObject]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest("user message content must be a string or a list of parts")
    return [b for b in (_user_part(p) for p in content) if b]


def _user_part(part: Any) -> JSONObject | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        text = part.get("text") or ""
        return {"type": "text", "text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return {"type": "image", "source": _image_source(url)}
    raise InvalidRequest(f"content part of type {kind!r} is not supported by Anthropic models")


def _image_source(url: Any) -> JSONObject:
    if not isinstance(url, str):
        raise InvalidRequest("image_url.url must be a string")
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise InvalidRequest("image data URLs must be base64 (data:image/png;base64,...)")
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise InvalidRequest("image_url.url must be an http(s) or data: URL")


def _assistant_blocks(message: JSONObject) -> list[JSONObject]:
    blocks: list[JSONObject] = []
    content = message.get("content")
    if isinstance(content, list):
        # Assistant parts are text or refusal; both read back as what the model said.
        content = "".join(p.get("text") or p.get("refusal") or "" for p in content)
    if content:
        blocks.append({"type": "text", "text": str(content)})
    blocks.extend(tool_use_block(call, _arguments) for call in message.get("tool_calls") or [])
    return blocks


def _arguments(raw: Any) -> JSONObject:
    """The client's tool call arguments: not an object is the client's error."""
    value = arguments_object(raw)
    if value is None:
        raise InvalidRequest("tool_calls: function.arguments must be a JSON object")
    return value


def _tool_result(message: JSONObject) -> JSONObject:
    block: JSONObject = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    text = _text_of(message.get("content"), "tool")
    if text:
        block["content"] = text
    return block


def _alternate(turns: list[JSONObject]) -> list[JSONObject]:
    """Anthropic requires user and assistant turns to alternate: consecutive turns of one
    role (several tool results, a tool result then the user's text) are merged."""
    merged: list[JSONObject] = []
    for turn in turns:
        if not turn["content"]:
            continue  # Anthropic rejects empty turns; an empty one says nothing anyway.
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"].extend(turn["content"])  # in place: linear in the turns
        else:
            merged.append({**turn, "content": list(turn["content"])})
    for turn in merged:
        if turn["role"] == "user":
            # Tool results must open the user turn that answers the tool calls.
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")  # stable
    return merged


def _tool(tool: Any) -> JSONObject:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise InvalidRequest("tools: only function tools are supported by Anthropic models")
    function = tool.get("function") or {}
    out: JSONObject = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> JSONObject | None:
    if choice is None or choice == "auto":
        out: JSONObject = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    else:
        raise InvalidRequest(f"tool_choice: {choice!r} is not supported by Anthropic models")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # Anthropic's default is auto already.
    return out


# OpenAI's reasoning_effort as Anthropic's effort (Anthropic has no "none": its least is low).
EFFORTS = {
    "none": "low", "minimal": "low", "low": "low", "medium": "medium",
    "high": "high", "xhigh": "xhigh", "max": "max",
}  # fmt: skip


def _output_config(body: JSONObject) -> JSONObject:
    """Anthropic's `output_config`: the effort, and the JSON schema the answer must follow."""
    config: JSONObject = {}
    effort = body.get("reasoning_effort")
    if effort in EFFORTS:
        config["effort"] = EFFORTS[effort]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["format"] = {"type": "json_schema", "schema": schema}
    return config
