"""A fake Gemini API server, speaking the real wire format: `POST
/v1beta/models/{model}:generateContent` (one GenerateContentResponse) and
`:streamGenerateContent?alt=sse` (one per SSE event, CRLF-framed as Google sends them,
each with the usage so far, the last with the totals and the finishReason); errors as
`{"error": {"code", "message", "status"}}`; a request it cannot read (not JSON, or no
`contents`) is Gemini's 400 INVALID_ARGUMENT, never a crash. Also `:embedContent`,
`:batchEmbedContents`, `:countTokens` and `GET /v1beta/models[/{name}]` (below).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import FakeUpstream, Unreadable, serve
from tests.fakes.openai import EMBEDDING_SIZE, MAX_DIMENSIONS, stall, vector

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def routes(fake: FakeUpstream) -> list[web.RouteDef]:
    async def models(request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        if method in METHODS:  # embeddings and token counts, below
            return await METHODS[method](request, fake, model)
        if method not in ("generateContent", "streamGenerateContent"):
            raise web.HTTPNotFound()
        body = await fake.record(request)
        script = fake.script
        if script.status >= 300:
            return web.json_response(error_body(fake), status=script.status)
        check(body)
        if script.malformed:
            return web.json_response({"kind": "not a GenerateContentResponse"})
        if method == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await _stream(request, fake, model)
        if method == "streamGenerateContent":  # without alt=sse: one JSON array at the end
            pieces = [[{"text": p}] for p in fake.split()]
            last = len(pieces) - 1
            return web.json_response(
                [response(fake, model, parts, final=i == last) for i, parts in enumerate(pieces)]
            )
        return web.json_response(response(fake, model, _parts(fake), final=True))

    return [web.post("/v1beta/models/{target}", models), *listing_routes()]


@asynccontextmanager
async def running() -> AsyncIterator[FakeUpstream]:
    async with serve(routes, refuse=refusal) as fake:
        yield fake


def check(body: dict[str, Any]) -> None:
    """Gemini's one required field (this fake reads nothing else of the body)."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Unreadable("* GenerateContentRequest.contents: contents is not specified")


def refusal(problem: Unreadable) -> web.Response:
    error = {"code": 400, "message": problem.message, "status": "INVALID_ARGUMENT"}
    return web.json_response({"error": error}, status=400)


def error_body(fake: FakeUpstream) -> dict[str, Any]:
    status = fake.script.status
    detail = {"code": status, "message": fake.script.error_message}
    return {"error": {**detail, "status": STATUSES.get(status, "UNKNOWN")}}


def usage_metadata(fake: FakeUpstream, *, final: bool) -> dict[str, Any]:
    s = fake.script
    if s.usage is not None:
        prompt = s.usage["promptTokenCount"]
        return s.usage if final else {"promptTokenCount": prompt, "totalTokenCount": prompt}
    if not final:  # what Gemini reports while it is still answering
        return {"promptTokenCount": s.input_tokens, "totalTokenCount": s.input_tokens}
    out = {
        "promptTokenCount": s.input_tokens,
        "candidatesTokenCount": s.output_tokens,
        "totalTokenCount": s.input_tokens + s.output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": s.input_tokens}],
    }
    if s.cached_tokens:
        out["cachedContentTokenCount"] = s.cached_tokens
    return out


def response(
    fake: FakeUpstream, model: str, parts: list[dict[str, Any]], *, final: bool
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if final:
        candidate["finishReason"] = "STOP"
        if fake.script.searches:
            queries = [f"query {n}" for n in range(fake.script.searches)]
            candidate["groundingMetadata"] = {"webSearchQueries": queries}
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    out["responseId"] = "fakeResponse0001"
    if not fake.script.omit_usage:
        out["usageMetadata"] = usage_metadata(fake, final=final)
    return out


def _parts(fake: FakeUpstream) -> list[dict[str, Any]]:
    if fake.script.tool_call:
        name, args = fake.script.tool_call
        return [{"functionCall": {"name": name, "args": args}}]
    return [{"text": fake.script.text}]


async def _stream(request: web.Request, fake: FakeUpstream, model: str) -> web.StreamResponse:
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await stream.prepare(request)
    script = fake.script
    # A function call arrives whole, in one event; text arrives in pieces.
    pieces = [_parts(fake)] if script.tool_call else [[{"text": p}] for p in fake.split()]
    if script.stall_after_chunks is not None:
        for parts in pieces[: script.stall_after_chunks]:
            await _send(stream, response(fake, model, parts, final=False))
        await stall(request, fake)
        return stream
    for i, parts in enumerate(pieces):
        await _send(stream, response(fake, model, parts, final=i == len(pieces) - 1))
    await stream.write_eof()
    return stream


async def _send(stream: web.StreamResponse, event: dict[str, Any]) -> None:
    await stream.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")


# Embeddings, token counts and the model list ------------------------------------------------
# `:embedContent` answers `{"embedding": {"values"}}`, `:batchEmbedContents`
# `{"embeddings": [...]}` (each request must name the path's model, as Gemini checks), both
# with `usageMetadata` (the script's input_tokens) unless `omit_usage`; vectors as the
# OpenAI fake's, `outputDimensionality` long. `:countTokens` takes `contents` or a
# `generateContentRequest` (naming its model), not both, and answers the script's
# input_tokens. `GET /v1beta/models[/{name}]` lists MODELS in Gemini's shape, paged.

Method = Callable[[web.Request, FakeUpstream, str], Awaitable[web.StreamResponse]]


async def _embed_content(
    request: web.Request, fake: FakeUpstream, model: str
) -> web.StreamResponse:
    body = await fake.record(request)
    if fake.script.status >= 300:
        return web.json_response(error_body(fake), status=fake.script.status)
    return web.json_response(_embedded(fake, {"embedding": _embedding(body)}))


async def _batch_embed(request: web.Request, fake: FakeUpstream, model: str) -> web.StreamResponse:
    body = await fake.record(request)
    if fake.script.status >= 300:
        return web.json_response(error_body(fake), status=fake.script.status)
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise Unreadable("* BatchEmbedContentsRequest.requests: requests is not specified")
    for i, item in enumerate(requests):
        if not isinstance(item, dict) or item.get("model") != f"models/{model}":
            where = f"* BatchEmbedContentsRequest.requests[{i}].model"
            raise Unreadable(f"{where}: must be models/{model}")
    if fake.script.malformed:
        return web.json_response({"embeddings": "not a list"})
    return web.json_response(_embedded(fake, {"embeddings": [_embedding(r) for r in requests]}))


def _embedding(request: dict[str, Any]) -> dict[str, Any]:
    content = request.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        raise Unreadable("* EmbedContentRequest.content: content is not specified")
    text = "".join(str(p.get("text", "")) for p in content["parts"] if isinstance(p, dict))
    size = request.get("outputDimensionality") or EMBEDDING_SIZE
    if not isinstance(size, int) or not 1 <= size <= MAX_DIMENSIONS:
        raise Unreadable(f"* EmbedContentRequest.output_dimensionality: 1 to {MAX_DIMENSIONS}")
    return {"values": vector(text, size)}


def _embedded(fake: FakeUpstream, answer: dict[str, Any]) -> dict[str, Any]:
    if not fake.script.omit_usage:
        used = fake.script.input_tokens
        answer["usageMetadata"] = {"promptTokenCount": used, "totalTokenCount": used}
    return answer


async def _count_tokens(request: web.Request, fake: FakeUpstream, model: str) -> web.StreamResponse:
    body = await fake.record(request)
    if fake.script.status >= 300:
        return web.json_response(error_body(fake), status=fake.script.status)
    inner = body.get("generateContentRequest")
    if (inner is None) == (body.get("contents") is None):
        raise Unreadable("* CountTokensRequest: give contents or generateContentRequest")
    if inner is not None:
        if not isinstance(inner, dict) or not str(inner.get("model", "")).startswith("models/"):
            raise Unreadable("* GenerateContentRequest.model: model is not specified")
        check(inner)
    used = fake.script.input_tokens
    details = [{"modality": "TEXT", "tokenCount": used}]
    return web.json_response({"totalTokens": used, "promptTokensDetails": details})


METHODS: dict[str, Method] = {
    "embedContent": _embed_content,
    "batchEmbedContents": _batch_embed,
    "countTokens": _count_tokens,
}

MODELS = [
    {
        "name": "models/gemini-fake-pro",
        "version": "001",
        "displayName": "Gemini Fake Pro",
        "description": "The fake's chat model.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    },
    {
        "name": "models/gemini-fake-embedding",
        "version": "001",
        "displayName": "Gemini Fake Embedding",
        "description": "The fake's embedding model.",
        "inputTokenLimit": 2048,
        "outputTokenLimit": 1,
        "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens"],
    },
]


def listing_routes() -> list[web.RouteDef]:
    async def list_models(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("pageSize") or 50)
        start = int(request.query.get("pageToken") or 0)
        page: dict[str, Any] = {"models": MODELS[start : start + size]}
        if start + size < len(MODELS):
            page["nextPageToken"] = str(start + size)
        return web.json_response(page)

    async def get_model(request: web.Request) -> web.StreamResponse:
        name = "models/" + request.match_info["name"]
        found = [m for m in MODELS if m["name"] == name]
        if not found:
            error = {"code": 404, "message": f"{name} is not found", "status": "NOT_FOUND"}
            return web.json_response({"error": error}, status=404)
        return web.json_response(found[0])

    return [web.get("/v1beta/models", list_models), web.get("/v1beta/models/{name}", get_model)]
