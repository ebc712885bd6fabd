"""OpenAI chat.completion.chunk objects → Anthropic stream events, for Anthropic clients of
models whose provider streams OpenAI chunks.

A pure state machine, no I/O. Failure policy: it trusts the provider's chunks (already
checked against their wire format); a stream that breaks is the provider's UpstreamFailure,
and `finish()` is then not called, so a client never sees message_stop for a cut answer.
"""

from __future__ import annotations

import uuid

from bytespike.translate.anthropic_response import (
    anthropic_usage,
    reasoning_text,
    stop_reason,
    thinking_block,
)
from bytespike.upstream.base import JSONObject, Usage, usage_from_openai

Event = tuple[str, JSONObject]


class OpenAIStreamToMessages:
    """Feed OpenAI chunks; get (event name, data) pairs of Anthropic's stream back, in its
    order: message_start, content blocks (start, deltas, stop), message_delta, message_stop.
    With `thinking` (the client asked to see it), reasoning deltas become a thinking block."""

    def __init__(
        self, model: str, message_id: str | None = None, *, thinking: bool = False
    ) -> None:
        self.model = model
        self.message_id = message_id or f"msg_{uuid.uuid4().hex}"
        self.thinking = thinking
        self.usage: Usage | None = None
        self._started = False
        self._finish: str | None = None
        self._block_kind: str | None = None  # the open content block's type (None: none open)
        self._blocks = 0
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index → Anthropic block index

    def start(self) -> list[Event]:
        """message_start, once (input tokens are 0 until OpenAI's last chunk states them)."""
        if self._started:
            return []
        self._started = True
        message: JSONObject = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(self.usage or Usage(0, 0)),
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def feed(self, chunk: JSONObject) -> list[Event]:
        events = self.start()
        self.usage = usage_from_openai(chunk.get("usage")) or self.usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = reasoning_text(delta) if self.thinking else None
            if reasoning:
                events += self._reasoning(reasoning)
            text = delta.get("content") or delta.get("refusal")
            if text:
                events += self._text(text)
            for call in delta.get("tool_calls") or []:
                events += self._tool_call(call)
            self._finish = choice.get("finish_reason") or self._finish
        return events

    def finish(self) -> list[Event]:
        """Close the open block and the message; call once the upstream stream has ended."""
        events = self.start() + self._close()
        usage = anthropic_usage(self.usage or Usage(0, 0))
        # OpenAI states input tokens only at the end; message_delta may restate them.
        delta_usage = {k: usage[k] for k in ("input_tokens", "output_tokens")}
        for name in ("cache_creation_input_tokens", "cache_read_input_tokens", "server_tool_use"):
            if usage.get(name):
                delta_usage[name] = usage[name]
        delta = {"stop_reason": stop_reason(self._finish), "stop_sequence": None}
        data = {"type": "message_delta", "delta": delta, "usage": delta_usage}
        events.append(("message_delta", data))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _text(self, text: str) -> list[Event]:
        events = [] if self._block_kind == "text" else self._open({"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return [*events, _delta(self._index(), delta)]

    def _reasoning(self, text: str) -> list[Event]:
        events = [] if self._block_kind == "thinking" else self._open(thinking_block(""))
        delta = {"type": "thinking_delta", "thinking": text}
        return [*events, _delta(self._index(), delta)]

    def _tool_call(self, call: JSONObject) -> list[Event]:
        function = call.get("function") or {}
        position = int(call.get("index", 0))
        events: list[Event] = []
        if position not in self._tools:
            block: JSONObject = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{uuid.uuid4().hex}",
                "name": function.get("name") or "",
                "input": {},
            }
            events = self._open(block)
            self._tools[position] = self._index()
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append(_delta(self._tools[position], delta))
        return events

    def _open(self, block: JSONObject) -> list[Event]:
        events = self._close()
        self._block_kind = block["type"]
        self._blocks += 1
        start = {"type": "content_block_start", "index": self._index(), "content_block": block}
        return [*events, ("content_block_start", start)]

    def _close(self) -> list[Event]:
        if self._block_kind is None:
            return []
        self._block_kind = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index()})]

    def _index(self) -> int:
        """The open block: always the last one opened (opening one closes the one before)."""
        return self._blocks - 1


def _delta(index: int, delta: JSONObject) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
