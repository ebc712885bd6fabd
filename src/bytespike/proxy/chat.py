"""POST /v1/chat/completions: the OpenAI Chat Completions API, metered, for any provider.

Every provider takes the OpenAI request shape (upstream/base.py): the body goes on nearly
as sent, with the catalog's upstream model name and the output limit the hold chose.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from bytespike.catalog import Model
from bytespike.errors import InvalidRequest
from bytespike.proxy import errors, estimate, pipeline, streaming, validation
from bytespike.proxy.chat_schema import ChatRequest
from bytespike.proxy.pipeline import Answer, CallSpec, Failure
from bytespike.proxy.streaming import Meter
from bytespike.upstream.base import (
    JSONObject,
    Prepared,
    Provider,
    UpstreamFailure,
    usage_from_openai,
)

# Fields bytespike sets itself on the way up.
_OURS = ("max_tokens", "max_completion_tokens", "stream_options")


class ChatCompletions:
    """The Chat Completions format (pipeline.Format)."""

    def parse(self, body: JSONObject) -> CallSpec:
        bound = pipeline.checked_bound(body)
        validation.check(ChatRequest, body, validation.openai_param)
        if body.get("n") not in (None, 1):
            raise InvalidRequest(
                "n > 1 is not supported: make one request per completion", param="n"
            )
        return CallSpec(
            model=body["model"],
            stream=bool(body.get("stream")),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            input_tokens=bound,
            body=body,
        )

    def exchange(
        self, spec: CallSpec, model: Model, provider: Provider, request: Request
    ) -> _Exchange:
        upstream = {k: v for k, v in spec.body.items() if k not in _OURS}
        upstream["model"] = model.upstream_model
        options = spec.body.get("stream_options") or {}
        wants_usage = bool(options.get("include_usage"))
        return _Exchange(provider, provider.prepare(upstream), model.id, wants_usage)

    def error(self, failure: Failure, headers: dict[str, str] | None) -> Response:
        return errors.openai_response(failure, headers)


FORMAT = ChatCompletions()


@dataclass(slots=True)
class _Exchange:
    provider: Provider
    request: Prepared
    model_id: str  # the client's name for the model, on every answer
    wants_usage: bool  # the usage chunk is always asked of the upstream, passed on if asked

    async def complete(self, max_tokens: int) -> Answer:
        completion = await self.provider.send(self.request.limit(max_tokens))
        written = sum(estimate.output_bytes(c["message"]) for c in completion["choices"])
        completion["model"] = self.model_id
        return Answer(completion, usage_from_openai(completion.get("usage")), written)

    def events(self, max_tokens: int) -> AsyncGenerator[JSONObject, None]:
        return self.provider.send_stream(self.request.limit(max_tokens))

    def frames(self, chunk: JSONObject, meter: Meter) -> Iterable[bytes]:
        if meter.openai_chunk(chunk) and not self.wants_usage:
            return ()
        chunk["model"] = self.model_id
        return (streaming.data(chunk),)

    def closing(self) -> Iterable[bytes]:
        return (b"data: [DONE]\n\n",)

    def broken(self, failure: UpstreamFailure) -> bytes:
        return streaming.data(errors.openai_body(failure))
