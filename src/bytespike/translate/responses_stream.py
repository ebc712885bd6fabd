"""OpenAI chat.completion.chunk objects → the Responses API's typed stream events, for
Responses clients of providers that stream in the chat shape.

A pure state machine, no I/O. Its order is OpenAI's: response.created, response.in_progress;
per output item output_item.added, its content (content_part.added, output_text.delta...
or function_call_arguments.delta...), their `.done` events and output_item.done; then
response.completed (response.incomplete for an answer cut short) with the usage. An item
is closed as soon as the next one begins.

Failure policy: it trusts the provider's chunks (already checked against their wire
format), except a tool call resumed after another began, which is UpstreamMalformed. A
stream that breaks is the provider's UpstreamFailure, and `finish()` is then not called,
so a client never sees response.completed for a cut answer.
"""

from __future__ import annotations

import copy
from typing import Any

from bytespike.translate.responses_request import ToolNames
from bytespike.translate.responses_response import (
    call_item,
    finished,
    item_id,
    message_item,
    text_part,
)
from bytespike.upstream.base import JSONObject, UpstreamMalformed


class ChatStreamToResponses:
    """Feed chat chunks; get Responses stream events (objects with `type`) back. `response`
    is the Response as it stands: complete once `finish()` has run."""

    def __init__(self, response: JSONObject, names: ToolNames) -> None:
        self.response = response  # a shell (translate/responses_response.py)
        self._names = names
        self._sequence = 0
        self._started = False
        self._open: int | None = None  # output index of the item being streamed
        self._calls: dict[int, int] = {}  # chat tool_calls index → output index
        self._finish: Any = None
        self._usage: Any = None

    def feed(self, chunk: JSONObject) -> list[JSONObject]:
        events = self._start()
        self._usage = chunk.get("usage") or self._usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                events += self._text(str(text))
            for call in delta.get("tool_calls") or ():
                events += self._call(call)
            self._finish = choice.get("finish_reason") or self._finish
        return events

    def finish(self) -> list[JSONObject]:
        """Close the open item and the response; call once the upstream stream has ended."""
        events = self._start() + self._close()
        finished(self.response, self._finish, self._usage)
        kind = "response.completed"
        if self.response["status"] == "incomplete":
            kind = "response.incomplete"
        return [*events, self._event(kind, response=copy.deepcopy(self.response))]

    def _start(self) -> list[JSONObject]:
        if self._started:
            return []
        self._started = True
        snapshot = copy.deepcopy(self.response)
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=copy.deepcopy(snapshot)),
        ]

    def _text(self, text: str) -> list[JSONObject]:
        events: list[JSONObject] = []
        item = self._current()
        if item is None or item["type"] != "message":
            added = message_item(item_id("msg"), "", "in_progress")
            added["content"] = []
            events = self._add(added)
            item = self._current()
            assert item is not None
            part = text_part("")
            item["content"].append(part)
            events.append(self._at(item, "response.content_part.added", part=copy.copy(part)))
        item["content"][0]["text"] += text
        events.append(self._at(item, "response.output_text.delta", delta=text, logprobs=[]))
        return events

    def _call(self, call: JSONObject) -> list[JSONObject]:
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        events: list[JSONObject] = []
        if position not in self._calls:
            opening = {**call, "function": {**function, "arguments": ""}}  # deltas follow
            added = call_item(item_id("fc"), opening, self._names, "in_progress")
            events = self._add(added)
            self._calls[position] = self._index()
        elif self._calls[position] != self._open:
            raise UpstreamMalformed("a tool call's arguments resumed after another item began")
        item = self._current()
        assert item is not None
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self._open,
                    delta=arguments,
                )
            )
        return events

    def _add(self, item: JSONObject) -> list[JSONObject]:
        events = self._close()
        self.response["output"].append(item)
        self._open = self._index()
        return [
            *events,
            self._event(
                "response.output_item.added", output_index=self._open, item=copy.deepcopy(item)
            ),
        ]

    def _close(self) -> list[JSONObject]:
        item = self._current()
        if item is None:
            return []
        status = "incomplete" if self._finish == "length" else "completed"
        events: list[JSONObject] = []
        if item["type"] == "message":
            part = item["content"][0]
            events.append(
                self._at(item, "response.output_text.done", text=part["text"], logprobs=[])
            )
            events.append(self._at(item, "response.content_part.done", part=copy.copy(part)))
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=self._open,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
            status = "completed"
        item["status"] = status
        done = self._event(
            "response.output_item.done", output_index=self._open, item=copy.deepcopy(item)
        )
        self._open = None
        return [*events, done]

    def _current(self) -> JSONObject | None:
        if self._open is None:
            return None
        item: JSONObject = self.response["output"][self._open]
        return item

    def _index(self) -> int:
        return len(self.response["output"]) - 1

    def _at(self, item: JSONObject, kind: str, **fields: Any) -> JSONObject:
        """An event about the open message's (only) content part."""
        return self._event(
            kind, item_id=item["id"], output_index=self._open, content_index=0, **fields
        )

    def _event(self, kind: str, **fields: Any) -> JSONObject:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def error(self, code: str | None, message: str, param: str | None) -> JSONObject:
        """The `error` event of a stream that broke, in sequence."""
        return self._event("error", code=code, message=message, param=param)
