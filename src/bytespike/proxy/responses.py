"""POST /v1/responses: the OpenAI Responses API, metered, for any provider.

A provider that speaks Responses itself (the NativeResponses capability: OpenAI) gets the
request as sent, but for what the gateway owns: the conversation `previous_response_id`
names is replayed as input items (the gateway stores responses; the upstream is told
`store: false` and stores nothing), hosted tools are left out (their cost is no token the
hold could bound), and the output limit is the hold's. Any other provider gets the request
translated into the chat shape every provider speaks (translate/responses_request.py), and
its answer or stream translated back into a Response and Responses stream events.

A response is stored (responses/service.py) once its call has settled, unless the request
said `store: false`; the replayed conversation is part of the body the hold bounds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.billing.pricing import MESSAGE_OVERHEAD_TOKENS
from bytespike.catalog import Model
from bytespike.errors import InvalidRequest
from bytespike.keys.cache import CachedKey
from bytespike.proxy import errors, pipeline, streaming, validation
from bytespike.proxy.pipeline import Answer, CallSpec, Exchange, Failure, Gateway
from bytespike.proxy.responses_schema import ResponsesRequest
from bytespike.proxy.streaming import Meter
from bytespike.responses import service as stored
from bytespike.translate import responses_response as answer
from bytespike.translate.responses_request import HOSTED, ToolNames, items_of, to_chat
from bytespike.translate.responses_stream import ChatStreamToResponses
from bytespike.upstream.base import (
    JSONObject,
    Prepared,
    Provider,
    UpstreamFailure,
    usage_from_openai,
)
from bytespike.upstream.openai_responses import TERMINAL, NativeResponses, usage_from_responses

# Stream events whose `delta` is output the model wrote (for an estimate without usage).
_OUTPUT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
    }
)
# Request fields that mean something only to OpenAI's own state, which the gateway keeps.
_NOT_SENT = ("previous_response_id", "background")


class Responses:
    """The Responses format (pipeline.Format; pipeline.Recalling)."""

    def parse(self, body: JSONObject) -> CallSpec:
        validation.check(ResponsesRequest, body, validation.openai_param)
        _refuse_unsupported(body)
        return _spec(body)

    async def recall(self, gw: Gateway, key: CachedKey, spec: CallSpec) -> CallSpec:
        """The spec with the stored conversation it continues replayed before its input."""
        previous = spec.body.get("previous_response_id")
        if previous is None:
            return spec
        replayed = await stored.conversation(gw.ctx, key.record.user_id, previous)
        body = {**spec.body, "input": _replayable(replayed) + items_of(spec.body)}
        return _spec(body)

    def exchange(
        self, spec: CallSpec, model: Model, provider: Provider, request: Request
    ) -> Exchange:
        body = spec.body
        shell = answer.shell(
            body, response_id=stored.new_id(), model=model.id, created_at=int(time.time())
        )
        storing = Storing(items_of(body)) if body.get("store") is not False else None
        if isinstance(provider, NativeResponses):
            payload = _native_request(body, model.upstream_model)
            prepared = Prepared(model.upstream_model, payload, limit_at=("max_output_tokens",))
            return _Native(provider, prepared, shell, storing)
        chat, names = to_chat(body)
        chat["model"] = model.upstream_model
        return _Translated(provider, provider.prepare(chat), shell, names, storing)

    def error(self, failure: Failure, headers: dict[str, str] | None) -> Response:
        return errors.openai_response(failure, headers)


FORMAT = Responses()


def _spec(body: JSONObject) -> CallSpec:
    """The call `body` asks for: its bound walks every byte (replayed items included), plus
    a message's overhead per item, as for chat messages."""
    items = items_of(body)
    turns = len(items) + (1 if body.get("instructions") else 0)
    return CallSpec(
        model=body["model"],
        stream=bool(body.get("stream")),
        max_tokens=body.get("max_output_tokens"),
        input_tokens=pipeline.checked_bound(body) + MESSAGE_OVERHEAD_TOKENS * turns,
        body=body,
        referenced=_referenced(items),
    )


def _referenced(items: list[Any]) -> int:
    """Files the input names without carrying them (by id or URL): the hold covers each as
    a whole context window. Images are bounded as images wherever they come from."""
    count = 0
    for item in items:
        content = item.get("content") if item.get("type", "message") == "message" else None
        for part in content if isinstance(content, list) else ():
            if part["type"] == "input_file" and (part.get("file_id") or part.get("file_url")):
                count += 1
    return count


def _refuse_unsupported(body: JSONObject) -> None:
    """400 for what the gateway cannot meter or keep: OpenAI-side state and templates."""
    if body.get("background"):
        raise InvalidRequest(
            "background: background responses are not supported", param="background"
        )
    for name in ("conversation", "prompt"):
        if body.get(name) is not None:
            what = "conversations" if name == "conversation" else "stored prompt templates"
            raise InvalidRequest(
                f"{name}: {what} are not supported; send the input itself "
                "(a conversation continues with previous_response_id)",
                param=name,
            )
    if isinstance(body["input"], list):
        for index, item in enumerate(body["input"]):
            if item.get("type") == "item_reference":
                raise InvalidRequest(
                    f"input[{index}].type: item references are not supported; send the item "
                    "itself or continue with previous_response_id",
                    param=f"input[{index}].type",
                )
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in HOSTED:
        raise InvalidRequest(
            f"tool_choice.type: hosted tools ({choice['type']}) are not available through "
            "the gateway",
            param="tool_choice.type",
        )


def _replayable(items: list[Any]) -> list[Any]:
    """A stored conversation as items to send again: without the ids of the upstream's own
    items (it stored nothing), and without reasoning it cannot read back (no encrypted
    content)."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "reasoning":
            if item.get("encrypted_content"):
                out.append(item)
            continue
        out.append({key: value for key, value in item.items() if key != "id"})
    return out


def _native_request(body: JSONObject, upstream_model: str) -> JSONObject:
    # A client's null means the default, which OpenAI gives a field left out; some of its
    # request fields take no null (tool_choice), and its answer would echo one.
    out = {k: v for k, v in body.items() if k not in _NOT_SENT and v is not None}
    out["model"] = upstream_model
    out["store"] = False
    tools = [tool for tool in body.get("tools") or () if tool["type"] not in HOSTED]
    out.pop("tools", None)
    if tools:
        out["tools"] = tools
    elif isinstance(out.get("tool_choice"), str):
        out.pop("tool_choice")  # nothing left to choose from
    return out


@dataclass(slots=True)
class Storing:
    """What a call stores once it has settled: its Response and the conversation it read."""

    items: list[Any]
    final: JSONObject | None = None  # the Response as answered, once it is whole

    async def keep(self, gw: Gateway, key: CachedKey) -> None:
        final = self.final
        if final is None or final.get("status") not in ("completed", "incomplete"):
            return
        owner = stored.Owner(
            user_id=key.record.user_id, key_id=key.record.id, wallet_id=key.wallet_id
        )
        copy = stored.row(owner, str(final["model"]), self.items, final, now=gw.ctx.clock.now())

        async def write(conn: Any) -> None:
            await stored.keep(conn, copy)

        fused = stored.fused_keep(copy) if gw.writes.fuses else None
        await gw.writes.run(write, order=key.wallet_id, fused=fused)


def _frame(event: JSONObject) -> bytes:
    return streaming.event(str(event["type"]), event)


def _error_event(failure: UpstreamFailure, sequence: int) -> JSONObject:
    return {
        "type": "error",
        "sequence_number": sequence,
        "code": failure.code,
        "message": failure.message,
        "param": failure.param,
    }


@dataclass(slots=True)
class _Native:
    provider: NativeResponses
    request: Prepared
    shell: JSONObject  # our id and the client's names, put on the upstream's Response
    storing: Storing | None
    sequence: int = -1  # the last event's sequence number

    async def complete(self, max_tokens: int) -> Answer:
        response = await self.provider.responses(self.request.limit(max_tokens).payload)
        self._own(response)
        if self.storing is not None:
            self.storing.final = response
        usage = usage_from_responses(response.get("usage"), response.get("output"))
        return Answer(response, usage, answer.output_bytes(response))

    def events(self, max_tokens: int) -> AsyncGenerator[JSONObject, None]:
        return self.provider.responses_stream(self.request.limit(max_tokens).payload)

    def frames(self, event: JSONObject, meter: Meter) -> Iterable[bytes]:
        kind = event["type"]
        if isinstance(event.get("sequence_number"), int):
            self.sequence = event["sequence_number"]
        response = event.get("response")
        if isinstance(response, dict):
            self._own(response)
        delta = event.get("delta")
        if kind in _OUTPUT_DELTAS and isinstance(delta, str):
            meter.output_bytes += len(delta.encode())
        if kind in TERMINAL and isinstance(response, dict):
            usage = usage_from_responses(response.get("usage"), response.get("output"))
            if usage is not None:
                meter.usage, meter.final_usage = usage, True
            if self.storing is not None:
                self.storing.final = response
        return (_frame(event),)

    def closing(self) -> Iterable[bytes]:
        return ()

    def broken(self, failure: UpstreamFailure) -> bytes:
        return _frame(_error_event(failure, self.sequence + 1))

    async def keep(self, gw: Gateway, key: CachedKey) -> None:
        if self.storing is not None:
            await self.storing.keep(gw, key)

    def _own(self, response: JSONObject) -> None:
        """The upstream's Response under the gateway's id and the client's own names."""
        for name in ("id", "model", "store", "previous_response_id"):
            response[name] = self.shell[name]


@dataclass(slots=True)
class _Translated:
    provider: Provider
    request: Prepared
    shell: JSONObject
    names: ToolNames
    storing: Storing | None
    translator: ChatStreamToResponses = field(init=False)

    def __post_init__(self) -> None:
        self.translator = ChatStreamToResponses(self.shell, self.names)

    async def complete(self, max_tokens: int) -> Answer:
        usage = None
        try:
            completion = await self.provider.send(self.request.limit(max_tokens))
            usage = usage_from_openai(completion.get("usage"))
            response = answer.from_completion(completion, self.shell, self.names)
        except UpstreamFailure as failure:
            # An answer we cannot translate is a failure, but its reported usage is owed.
            failure.usage = failure.usage or usage
            raise
        if self.storing is not None:
            self.storing.final = response
        return Answer(response, usage, answer.output_bytes(response))

    def events(self, max_tokens: int) -> AsyncGenerator[JSONObject, None]:
        return self.provider.send_stream(self.request.limit(max_tokens))

    def frames(self, chunk: JSONObject, meter: Meter) -> Iterable[bytes]:
        meter.openai_chunk(chunk)
        return [_frame(event) for event in self.translator.feed(chunk)]

    def closing(self) -> Iterable[bytes]:
        events = self.translator.finish()
        if self.storing is not None:
            self.storing.final = self.translator.response
        return [_frame(event) for event in events]

    def broken(self, failure: UpstreamFailure) -> bytes:
        return _frame(self.translator.error(failure.code, failure.message, failure.param))

    async def keep(self, gw: Gateway, key: CachedKey) -> None:
        if self.storing is not None:
            await self.storing.keep(gw, key)
