"""Anthropic Messages request (from an Anthropic client) → OpenAI Chat Completions request,
for models whose provider does not speak Messages natively.

Pure functions. Failure policy: a malformed request or a block no OpenAI-shaped provider can
take (documents, server tools) raises InvalidRequest naming the field, before any upstream
call. Thinking blocks the client echoes back are dropped: they only mean something to the
model that wrote them. `max_tokens` may be missing; the proxy fills `max_completion_tokens`.

System items inside `messages` (Claude Code's) become system messages where they stand.
`thinking` and `output_config.effort` become `reasoning_effort` (see `reasoning_effort`),
which the Gemini provider turns into its thinkingConfig in turn.
"""

from __future__ import annotations

import json
from typing import Any

from bytespike.errors import InvalidRequest
from bytespike.translate import messages_system
from bytespike.upstream.base import JSONObject

# Blocks a client sends back from an earlier answer that carry nothing another model can use.
IGNORED_BLOCKS = frozenset({"thinking", "redacted_thinking"})

# Anthropic's effort levels as OpenAI's reasoning_effort ("max" has no OpenAI equal).
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
# A thinking budget (at least 1,024 tokens) as the effort spending about as much: below
# these many tokens, the level named (Gemini's budgets per level: 1,024, 8,192, 24,576).
BUDGET_EFFORTS = ((4_096, "low"), (16_384, "medium"))


def messages_request_to_openai(body: JSONObject) -> JSONObject:
    """The OpenAI chat request for an Anthropic Messages request."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: a non-empty list is required")
    out: JSONObject = {"model": body.get("model"), "messages": _system(body.get("system"))}
    for index, message in enumerate(messages):
        out["messages"].extend(_message(message, f"messages.{index}"))
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        out["tools"] = [_tool(t, f"tools.{i}") for i, t in enumerate(body["tools"])]
    if body.get("tool_choice"):
        out.update(_tool_choice(body["tool_choice"]))
    effort = reasoning_effort(body)
    if effort is not None:
        out["reasoning_effort"] = effort
    if body.get("stream"):
        # Without it OpenAI-shaped upstreams never report usage on a stream.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def reasoning_effort(body: JSONObject) -> str | None:
    """OpenAI's reasoning_effort for a Messages request: `output_config.effort` when given,
    else the level of `thinking.budget_tokens` for thinking "enabled". Adaptive thinking
    without an effort, and disabled thinking, send none: the model's own default (some
    OpenAI models cannot reason less than they do by default, and refuse "none")."""
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    if effort in EFFORTS:
        return EFFORTS[effort]
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int):
        return "medium"
    return next((level for below, level in BUDGET_EFFORTS if budget < below), "high")


def shows_thinking(body: JSONObject) -> bool:
    """Whether the client asked to see the model's thinking: thinking enabled or adaptive,
    and not `display: "omitted"`. Only then does reasoning an upstream returns become
    thinking blocks (Anthropic returns none otherwise either)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return False
    return thinking.get("type") in ("enabled", "adaptive") and thinking.get("display") != "omitted"


def _system(system: Any) -> list[JSONObject]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if isinstance(system, list) and all(_is_text(b) for b in system):
        return [{"role": "system", "content": "\n\n".join(b["text"] for b in system)}]
    raise InvalidRequest("system: must be a string or a list of text blocks")


def _is_text(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "text" and "text" in block


def _message(message: Any, where: str) -> list[JSONObject]:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where}: must be an object")
    role, content = message.get("role"), message.get("content")
    if role == "system":
        texts = [b["text"] for b in messages_system.text_blocks(content, where)]
        return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"{where}.role: must be 'user', 'assistant' or 'system', not {role!r}")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content: must be a string or a list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}.content.{i}: must be a content block with a type")
    if role == "assistant":
        return [_assistant(content, where)]
    return _user(content, where)


def _user(blocks: list[JSONObject], where: str) -> list[JSONObject]:
    """Tool results become `tool` messages, which must directly follow the assistant's tool
    calls; the user's other blocks go into one user message after them."""
    tools: list[JSONObject] = []
    parts: list[JSONObject] = []
    for i, block in enumerate(blocks):
        at = f"{where}.content.{i}"
        if block["type"] == "tool_result":
            text, images = _tool_result_content(block.get("content"), at)
            if block.get("is_error"):
                text = f"Error: {text}" if text else "Error"
            call_id = block.get("tool_use_id")
            tools.append({"role": "tool", "tool_call_id": call_id, "content": text})
            parts.extend(images)  # OpenAI tool messages hold text only.
        elif block["type"] not in IGNORED_BLOCKS:
            parts.append(_user_part(block, at))
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _user_part(block: JSONObject, where: str) -> JSONObject:
    if block["type"] == "text":
        return {"type": "text", "text": block.get("text", "")}
    if block["type"] == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where)}}
    raise InvalidRequest(f"{where}: content block type {block['type']!r} is not supported here")


def _image_url(source: Any, where: str) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and source.get("media_type") and source.get("data"):
        return f"data:{source['media_type']};base64,{source['data']}"
    if kind == "url" and source.get("url"):
        return str(source["url"])
    raise InvalidRequest(f"{where}.source: must be a base64 or url image source")


def _tool_result_content(content: Any, where: str) -> tuple[str, list[JSONObject]]:
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content: must be a string or a list of blocks")
    texts, images = [], []
    for i, block in enumerate(content):
        if _is_text(block):
            texts.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "image":
            images.append(_user_part(block, f"{where}.content.{i}"))
        else:
            raise InvalidRequest(f"{where}.content.{i}: only text and image blocks are supported")
    return "\n".join(texts), images


def _assistant(blocks: list[JSONObject], where: str) -> JSONObject:
    texts: list[str] = []
    calls: list[JSONObject] = []
    for i, block in enumerate(blocks):
        if block["type"] == "text":
            texts.append(block.get("text", ""))
        elif block["type"] == "tool_use":
            calls.append(_tool_call(block, f"{where}.content.{i}"))
        elif block["type"] not in IGNORED_BLOCKS:
            raise InvalidRequest(
                f"{where}.content.{i}: assistant block type {block['type']!r} is not supported"
            )
    message: JSONObject = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: JSONObject, where: str) -> JSONObject:
    if not block.get("id") or not block.get("name"):
        raise InvalidRequest(f"{where}: tool_use blocks need an id and a name")
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": arguments},
    }


def _tool(tool: Any, where: str) -> JSONObject:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise InvalidRequest(f"{where}: server tool {kind!r} is only available on Claude models")
    if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
        raise InvalidRequest(f"{where}: a tool needs a name and an input_schema object")
    function: JSONObject = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> JSONObject:
    kind = choice.get("type") if isinstance(choice, dict) else None
    mapped: Any
    if kind == "auto":
        mapped = "auto"
    elif kind == "any":
        mapped = "required"
    elif kind == "none":
        return {"tool_choice": "none"}
    elif kind == "tool" and choice.get("name"):
        mapped = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequest("tool_choice: must be auto, any, tool (with a name) or none")
    out: JSONObject = {"tool_choice": mapped}
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out
