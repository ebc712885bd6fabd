"""Gemini's routes, under /v1beta/ and /v1/ as Google serves them (its SDKs use either):
`POST models/{model}:{method}` for generateContent, streamGenerateContent, countTokens,
embedContent and batchEmbedContents, and `GET models`, `GET models/{model}`.

`{model}:{method}` is split on its last colon (the `gemini_call` convertor), so any model
id reaches its route. `POST /v1/models/…:method` never meets OpenAI's `GET /v1/models/{id}`
(proxy/routes.py): the methods differ, and Starlette picks the route that takes both.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from bytespike.api.routing import Route
from bytespike.errors import NotFound
from bytespike.proxy import (
    gemini,
    gemini_count,
    gemini_embed,
    gemini_errors,
    gemini_models,
    pipeline,
)
from bytespike.proxy.pipeline import Format, Gateway

# The metered methods, by name; countTokens is free (proxy/gemini_count.py).
FORMATS: dict[str, Format] = {
    "generateContent": gemini.FORMAT,
    "embedContent": gemini_embed.EMBED,
    "batchEmbedContents": gemini_embed.BATCH,
}


class _Call(Convertor[tuple[str, str]]):
    """`{model}:{method}`, split on the last colon: (model, method)."""

    regex = "[\\s\\S]*:[A-Za-z]+"

    def convert(self, value: str) -> tuple[str, str]:
        model, _, method = value.rpartition(":")
        return model, method

    def to_string(self, value: tuple[str, str]) -> str:
        return ":".join(value)


register_url_convertor("gemini_call", _Call())


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def call_model(request: Request) -> Response:
    """One of a model's methods, for any model on the key's roster."""
    model, method = request.path_params["call"]
    gw = _gateway(request)
    if method == "streamGenerateContent":
        sse = request.query_params.get("alt") == "sse"
        fmt = gemini.STREAM_SSE if sse else gemini.STREAM
        response = await pipeline.run(gw, fmt, request, model=model)
        return response if sse else gemini.streamed_as_json(response)
    if method == "countTokens":
        return await gemini_count.count_tokens(gw, request, model)
    if method in FORMATS:
        return await pipeline.run(gw, FORMATS[method], request, model=model)
    return gemini_errors.response(NotFound(f"models/{model}:{method} is not a method here"))


async def list_models(request: Request) -> Response:
    """The models this key may call, in Gemini's shape."""
    return await gemini_models.list_models(_gateway(request), request)


async def get_model(request: Request) -> Response:
    return await gemini_models.get_model(_gateway(request), request, request.path_params["model"])


routes = [
    Route("/v1beta/models/{call:gemini_call}", call_model, methods=["POST"]),
    Route("/v1/models/{call:gemini_call}", call_model, methods=["POST"]),
    Route("/v1beta/models", list_models, methods=["GET"]),
    Route("/v1beta/models/{model:anypath}", get_model, methods=["GET"]),
]
