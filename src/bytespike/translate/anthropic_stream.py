"""Anthropic stream events → OpenAI chat.completion.chunk objects, and the usage an
Anthropic stream has reported so far.

Pure state machines, no I/O. Failure policy: the translator never raises on events it does
not know (ping, thinking, newer event types) — it skips them; `error` events and streams
that end early are the provider's to turn into UpstreamFailures, with `usage` so far.
"""

from __future__ import annotations

import time

from bytespike.translate.anthropic_response import anthropic_usage, finish_reason
from bytespike.upstream.base import JSONObject, Usage, openai_usage, usage_from_anthropic


def fold_stream_usage(event: str, data: JSONObject, usage: Usage | None) -> Usage | None:
    """Usage after one more event: message_start states input and cache tokens;
    message_delta restates cumulative counts (output always, the others when they changed,
    as server tools add input), each replacing the count it restates."""
    if event == "message_start":
        message = data.get("message")
        return usage_from_anthropic(message.get("usage") if isinstance(message, dict) else None)
    delta = data.get("usage")
    if event != "message_delta" or not isinstance(delta, dict):
        return usage
    # A delta restates cache writes without their split by lifetime: the 1-hour part seen
    # at message_start stands, and usage_from_anthropic counts the rest as 5-minute writes.
    stated = {key: value for key, value in delta.items() if value is not None}
    return usage_from_anthropic({**anthropic_usage(usage or Usage(0, 0)), **stated})


class MessagesStreamToOpenAI:
    """Feed (event, data) pairs of an Anthropic stream; get OpenAI chunks back. The final
    chunk (empty `choices`, `usage`) comes with message_stop, or from `finish()`."""

    def __init__(self, *, created: int | None = None) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time()) if created is None else created
        self.usage: Usage | None = None
        self.done = False
        self._tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool_calls index

    def feed(self, event: str, data: JSONObject) -> list[JSONObject]:
        self.usage = fold_stream_usage(event, data, self.usage)
        if event == "message_start":
            message = data.get("message") or {}
            self.id = str(message.get("id") or "")
            self.model = str(message.get("model") or "")
            return [self._chunk({"role": "assistant", "content": ""})]
        if event == "content_block_start":
            return self._block_start(data)
        if event == "content_block_delta":
            return self._block_delta(data)
        if event == "message_delta":
            reason = (data.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, finish_reason(reason))] if reason else []
        if event == "message_stop":
            return self.finish()
        return []

    def finish(self) -> list[JSONObject]:
        """The usage chunk, once; empty if it was already sent."""
        if self.done:
            return []
        self.done = True
        usage = openai_usage(self.usage or Usage(0, 0))
        return [{**self._base(), "choices": [], "usage": usage}]

    def _block_start(self, data: JSONObject) -> list[JSONObject]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        index = self._tools[int(data.get("index", 0))] = len(self._tools)
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: JSONObject) -> list[JSONObject]:
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        index = self._tools.get(int(data.get("index", 0)))
        if delta.get("type") == "input_json_delta" and index is not None:
            call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _chunk(self, delta: JSONObject, finish: str | None = None) -> JSONObject:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self._base(), "choices": [choice]}

    def _base(self) -> JSONObject:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }
