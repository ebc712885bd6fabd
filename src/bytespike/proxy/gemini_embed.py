"""POST /v1beta/models/{model}:embedContent and :batchEmbedContents (the same under /v1/):
Gemini's embeddings API, metered, for every embedding model on the key's roster.

To a Gemini model the request passes untranslated (each request of a batch naming the
upstream's model); to any other (OpenAI, OpenAI-compatible) it becomes one OpenAI
embeddings request of the texts, and the vectors come back in Gemini's shape: `taskType`
and `title` have no OpenAI meaning and are dropped, contents other than text are refused.
Billed for the input tokens the upstream reports, else one token per four UTF-8 bytes of
each content's text (upstream/embeddings.py). Errors in Gemini's envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from starlette.requests import Request
from starlette.responses import Response

from bytespike.billing.pricing import IMAGE_TOKENS
from bytespike.catalog import Model
from bytespike.errors import InvalidRequest
from bytespike.proxy import gemini_errors, gemini_schema, pipeline, validation
from bytespike.proxy.embeddings import Unstreamed
from bytespike.proxy.pipeline import Answer, CallSpec, Exchange, Failure
from bytespike.upstream import embeddings, gemini_embed
from bytespike.upstream.base import JSONObject, Prepared, Provider, Usage
from bytespike.upstream.embeddings import Embeddings
from bytespike.upstream.gemini import NativeGemini


@dataclass(frozen=True, slots=True)
class EmbedContent:
    """Gemini's embedContent (`batch=False`) or batchEmbedContents API (pipeline.Format)."""

    kind: ClassVar[str] = "embedding"
    batch: bool = False

    def parse(self, body: JSONObject) -> CallSpec:
        bound = pipeline.checked_bound(body)
        body = gemini_schema.camel_case(body)
        schema = gemini_schema.BatchEmbedContentsRequest if self.batch else None
        validation.check(schema or gemini_schema.EmbedContentRequest, body, validation.openai_param)
        parts = [p for r in self.requests(body) for p in r["content"]["parts"]]
        media = sum(1 for p in parts if p.get("inlineData"))
        return CallSpec(
            model="",  # the path names it (pipeline.run's `model`)
            stream=False,
            max_tokens=1,
            input_tokens=bound + IMAGE_TOKENS * media,
            body=body,
            # Each content may name a file as long as the model's context window.
            referenced=sum(1 for r in self.requests(body) if _files(r)),
        )

    def requests(self, body: JSONObject) -> list[JSONObject]:
        return list(body["requests"]) if self.batch else [body]

    def exchange(
        self, spec: CallSpec, model: Model, provider: Provider, request: Request
    ) -> Exchange:
        requests = self.requests(spec.body)
        for i, item in enumerate(requests):
            named = str(item.get("model") or gemini_embed.resource(model.id))
            if self.batch and named != gemini_embed.resource(model.id):
                param = f"requests[{i}].model"
                raise InvalidRequest(f"{param}: must name the path's model", param=param)
        if isinstance(provider, NativeGemini):
            upstream = gemini_embed.resource(model.upstream_model)
            if self.batch:
                body: JSONObject = {"requests": [dict(r, model=upstream) for r in requests]}
            else:  # embedContent takes its model from the path only
                body = {k: v for k, v in requests[0].items() if k != "model"}
            return _Native(provider, model.upstream_model, self.method, body, _texts(requests))
        if isinstance(provider, Embeddings):
            translated = _openai_request(requests, model.upstream_model)
            prepared = provider.prepare_embeddings(translated)
            return _Translated(provider, prepared, translated["input"], self.batch)
        raise InvalidRequest(f"{model.id!r} is served by no embeddings API", param="model")

    @property
    def method(self) -> str:
        return "batchEmbedContents" if self.batch else "embedContent"

    def error(self, failure: Failure, headers: dict[str, str] | None) -> Response:
        return gemini_errors.response(failure, headers)


EMBED = EmbedContent()
BATCH = EmbedContent(batch=True)


def _files(request: JSONObject) -> bool:
    return any(p.get("fileData") for p in request["content"]["parts"])


def _texts(requests: list[JSONObject]) -> list[embeddings.Input]:
    """Each content's text, for the estimate when no usage is reported."""
    return ["".join(p.get("text") or "" for p in r["content"]["parts"]) for r in requests]


def _openai_request(requests: list[JSONObject], model: str) -> JSONObject:
    texts = []
    for i, item in enumerate(requests):
        parts = item["content"]["parts"]
        if any(p.get("text") is None for p in parts):
            param = f"requests[{i}].content"
            raise InvalidRequest(f"{param}: this model embeds text only", param=param)
        texts.append("".join(p["text"] for p in parts))
    sizes = {item.get("outputDimensionality") for item in requests}
    if len(sizes) > 1:
        message = "outputDimensionality: one size for every request of a batch to this model"
        raise InvalidRequest(message, param="requests")
    out: JSONObject = {"model": model, "input": texts, "encoding_format": "float"}
    size = sizes.pop()
    return out if size is None else {**out, "dimensions": size}


@dataclass(slots=True)
class _Native(Unstreamed):
    provider: NativeGemini
    upstream_model: str
    method: str
    payload: JSONObject
    texts: list[embeddings.Input]

    async def complete(self, max_tokens: int) -> Answer:
        answer = await self.provider.call(self.upstream_model, self.method, self.payload)
        gemini_embed.values(answer, count=len(self.texts))  # UpstreamMalformed if not
        used = gemini_embed.prompt_tokens(answer)
        usage = embeddings.estimate(self.texts) if used is None else _usage(used)
        return Answer(answer, usage, 0)


@dataclass(slots=True)
class _Translated(Unstreamed):
    provider: Embeddings
    request: Prepared
    texts: list[embeddings.Input]
    batch: bool

    async def complete(self, max_tokens: int) -> Answer:
        answer = await self.provider.embed(self.request)
        usage = embeddings.usage_of(answer) or embeddings.estimate(self.texts)
        vectors = [_floats(item["embedding"]) for item in answer["data"]]
        metadata = {"promptTokenCount": usage.input_tokens, "totalTokenCount": usage.input_tokens}
        if self.batch:
            answer = {"embeddings": [{"values": vector} for vector in vectors]}
        else:
            answer = {"embedding": {"values": vectors[0]}}
        return Answer({**answer, "usageMetadata": metadata}, usage, 0)


def _floats(vector: list[float] | str) -> list[float]:
    return embeddings.from_base64(vector) if isinstance(vector, str) else vector


def _usage(input_tokens: int) -> Usage:
    return Usage(input_tokens=input_tokens, output_tokens=0)
