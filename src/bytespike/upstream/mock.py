"""The built-in mock upstream: answers without a network, for the quickstart and demos.

Every reply is labelled "[mock]" so nobody mistakes it for a model. Answers and usage are
a pure function of the request (same request, same answer and same bill), and usage
respects `max_completion_tokens` the way a real model does: the reply is cut short with
finish_reason "length".

Failure policy: it cannot fail; any request with messages gets an answer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from bytespike.upstream.base import JSONObject, Prepared, Usage, openai_usage

ECHO_LIMIT = 200  # characters of the user's message echoed back
PER_MESSAGE = 4  # tokens of framing per message, roughly as real tokenizers charge


def tokens(text: str) -> int:
    """About four UTF-8 bytes per token, rounded up."""
    return -(-len(text.encode()) // 4)


def prompt_tokens(body: JSONObject) -> int:
    return sum(tokens(_text(m)) + PER_MESSAGE for m in body.get("messages") or ())


def reply(body: JSONObject) -> tuple[str | None, list[JSONObject], str, Usage]:
    """(content, tool calls, finish_reason, usage) of the mock's answer to `body`."""
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    usage_in = prompt_tokens(body)
    tool = _forced_tool(body)
    if tool is not None:
        function = {"name": tool, "arguments": "{}"}
        call = {"id": f"call_{_digest(body)[:24]}", "type": "function", "function": function}
        out = tokens(tool) + 1
        return (
            None,
            [call],
            "tool_calls",
            Usage(usage_in, out if limit is None else min(out, limit)),
        )
    text = "[mock] " + _echo(body)
    finish = "stop"
    if limit is not None and tokens(text) > limit:
        text = text.encode()[: limit * 4].decode(errors="ignore")
        finish = "length"
    return text, [], finish, Usage(usage_in, tokens(text))


class MockProvider:
    """A deterministic stand-in upstream; no network, nothing to close."""

    def __init__(self, name: str = "mock") -> None:
        self.name = name

    def prepare(self, body: JSONObject) -> Prepared:
        model = str(body.get("model") or "mock")
        return Prepared(model=model, payload=dict(body), limit_at=("max_completion_tokens",))

    async def send(self, request: Prepared) -> JSONObject:
        return await self.complete(request.payload)

    def send_stream(self, request: Prepared) -> AsyncGenerator[JSONObject, None]:
        return self.stream(request.payload)

    async def complete(self, body: JSONObject) -> JSONObject:
        content, calls, finish, usage = reply(body)
        message: JSONObject = {"role": "assistant", "content": content, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return {
            **_header(body, "chat.completion"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": openai_usage(usage),
        }

    async def stream(self, body: JSONObject) -> AsyncGenerator[JSONObject, None]:
        content, calls, finish, usage = reply(body)
        header = _header(body, "chat.completion.chunk")
        deltas: list[JSONObject] = [{"role": "assistant", "content": ""}]
        words = (content or "").split(" ")
        deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words) if content]
        deltas += [{"tool_calls": [{"index": i, **call}]} for i, call in enumerate(calls)]
        for delta in deltas:
            yield {**header, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        yield {**header, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        yield {**header, "choices": [], "usage": openai_usage(usage)}

    async def close(self) -> None:
        """Nothing to release."""


def _text(message: JSONObject) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    functions = [c.get("function") or {} for c in message.get("tool_calls") or ()]
    calls = "".join(f"{f.get('name', '')}{f.get('arguments', '')}" for f in functions)
    return (content if isinstance(content, str) else "") + calls


def _echo(body: JSONObject) -> str:
    users = [m for m in body.get("messages") or () if m.get("role") == "user"]
    said = _text(users[-1]).strip() if users else ""
    if not said:
        return "Hello! I am the mock model; I echo what you say."
    return "You said: " + said[:ECHO_LIMIT]


def _forced_tool(body: JSONObject) -> str | None:
    """The function the request makes the model call, if it makes it call one."""
    tools = [t.get("function", {}).get("name") for t in body.get("tools") or ()]
    choice: Any = body.get("tool_choice")
    if not tools or not tools[0]:
        return None
    if isinstance(choice, dict):
        return str(choice.get("function", {}).get("name") or tools[0])
    return str(tools[0]) if choice == "required" else None


def _digest(body: JSONObject) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _header(body: JSONObject, kind: str) -> JSONObject:
    return {
        "id": f"chatcmpl-mock-{_digest(body)[:24]}",
        "object": kind,
        "created": int(time.time()),
        "model": str(body.get("model") or "mock"),
    }
