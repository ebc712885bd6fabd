"""POST /v1/embeddings: OpenAI's embeddings API, metered, for every embedding model whose
provider has an embeddings API (OpenAI, OpenAI-compatible servers, Gemini).

The request is OpenAI's `CreateEmbeddingRequest`: `input` a string, an array of strings, a
token array or an array of token arrays; `dimensions`; `encoding_format` float or base64.
The hold bounds every byte of the body (a token of a token array is at least one digit);
the call is billed for the input tokens the upstream reports, or, where it reports none
(Gemini may not; some compatible servers), one token per four UTF-8 bytes of each text and
one per element of a token array (upstream/embeddings.py), as the answer's `usage` then
says. Nothing streams.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from bytespike.catalog import Model
from bytespike.errors import InvalidRequest
from bytespike.proxy import errors, pipeline, validation
from bytespike.proxy.pipeline import Answer, CallSpec, Failure
from bytespike.proxy.streaming import Meter
from bytespike.upstream import embeddings
from bytespike.upstream.base import JSONObject, Prepared, Provider, UpstreamFailure
from bytespike.upstream.embeddings import Embeddings

MAX_INPUTS = 2048  # the reference's limit on an input array
Text = Annotated[str, Field(min_length=1)]  # "cannot be an empty string"
Tokens = Annotated[list[int], Field(min_length=1, max_length=MAX_INPUTS)]


class EmbeddingRequest(validation.Schema):
    """OpenAI's `CreateEmbeddingRequest` (unknown fields pass, as on every route)."""

    model: str = Field(min_length=1)
    input: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=MAX_INPUTS)]
        | Tokens
        | Annotated[list[Tokens], Field(min_length=1, max_length=MAX_INPUTS)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class CreateEmbeddings:
    """The embeddings format (pipeline.Format), for embedding models only."""

    kind = "embedding"

    def parse(self, body: JSONObject) -> CallSpec:
        bound = pipeline.checked_bound(body)
        validation.check(EmbeddingRequest, body, validation.openai_param)
        return CallSpec(
            model=body["model"], stream=False, max_tokens=1, input_tokens=bound, body=body
        )

    def exchange(
        self, spec: CallSpec, model: Model, provider: Provider, request: Request
    ) -> _Exchange:
        if not isinstance(provider, Embeddings):
            raise InvalidRequest(f"{model.id!r} is served by no embeddings API", param="model")
        upstream = dict(spec.body, model=model.upstream_model)
        prepared = provider.prepare_embeddings(upstream)  # 400: what it cannot take
        base64 = spec.body.get("encoding_format") == "base64"
        return _Exchange(provider, prepared, model.id, embeddings.inputs(spec.body), base64)

    def error(self, failure: Failure, headers: dict[str, str] | None) -> Response:
        return errors.openai_response(failure, headers)


FORMAT = CreateEmbeddings()


class Unstreamed:
    """The stream verbs of an Exchange for a call that never streams (its CallSpec says
    so): embeddings. There is nothing for them to do."""

    __slots__ = ()

    async def events(self, max_tokens: int) -> AsyncGenerator[Any, None]:
        return
        yield  # (an async generator that yields nothing)

    def frames(self, item: Any, meter: Meter) -> Iterable[bytes]:
        return ()

    def closing(self) -> Iterable[bytes]:
        return ()

    def broken(self, failure: UpstreamFailure) -> bytes:
        return b""


@dataclass(slots=True)
class _Exchange(Unstreamed):
    provider: Embeddings
    request: Prepared
    model_id: str  # the client's name for the model, on the answer
    inputs: list[embeddings.Input]  # for the estimate, when no usage is reported
    base64: bool  # the client asked for base64 vectors

    async def complete(self, max_tokens: int) -> Answer:
        answer = await self.provider.embed(self.request)
        usage = embeddings.usage_of(answer) or embeddings.estimate(self.inputs)
        answer["usage"] = embeddings.openai_usage(usage)
        answer["model"] = self.model_id
        if self.base64:  # a provider that answers floats only (Gemini)
            for item in answer["data"]:
                if isinstance(item["embedding"], list):
                    item["embedding"] = embeddings.to_base64(item["embedding"])
        return Answer(answer, usage, 0)
