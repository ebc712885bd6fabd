"""The client-facing model APIs: OpenAI's /v1/chat/completions, /v1/responses and /v1/models,
Anthropic's /v1/messages and /v1/messages/count_tokens (and /v1/models for Anthropic's SDKs),
OpenAI's /v1/embeddings, Gemini's (proxy/gemini_routes.py; /v1/models for Google's SDKs).
Failures leave in the client's own error format (proxy/errors.py, proxy/gemini_errors.py).

Plain Starlette routes, not FastAPI ones: these bodies are free-form provider payloads that
FastAPI would not validate anyway, and its per-request machinery (dependency solving, an
exit stack) measurably costs on the hot path. They are documented in the README, after
OpenAI's and Anthropic's own references.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api.routing import Route
from bytespike.errors import BytespikeError
from bytespike.proxy import (
    anthropic_models,
    chat,
    embeddings,
    errors,
    gemini_models,
    gemini_routes,
    messages,
    models,
    pipeline,
    responses,
    token_count,
)
from bytespike.proxy.pipeline import Gateway
from bytespike.responses import views as stored

log = logging.getLogger(__name__)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _guarded(
    request: Request,
    run: Callable[[], Awaitable[Response]],
    render: Callable[[errors.Failure, dict[str, str] | None], Response],
) -> Response:
    """`run`, with a refusal in the client's format; once the key has been counted against
    its rate limit, every answer carries the rate-limit headers, refusals included."""
    try:
        return await run()
    except BytespikeError as exc:
        return render(exc, request.scope.get("state", {}).get("rate_headers"))


async def chat_completions(request: Request) -> Response:
    """OpenAI Chat Completions (streaming or not) for any model on the key's roster."""
    return await pipeline.run(_gateway(request), chat.FORMAT, request)


async def create_embeddings(request: Request) -> Response:
    """OpenAI embeddings for any embedding model on the key's roster."""
    return await pipeline.run(_gateway(request), embeddings.FORMAT, request)


async def create_response(request: Request) -> Response:
    """OpenAI Responses (streaming or not) for any model on the key's roster."""
    return await pipeline.run(_gateway(request), responses.FORMAT, request)


async def stored_response(request: Request) -> Response:
    """GET or DELETE a stored response (responses/views.py)."""
    response_id = request.path_params["response_id"]
    view = stored.retrieve if request.method == "GET" else stored.delete
    return await _guarded(
        request, lambda: view(_gateway(request), request, response_id), errors.openai_response
    )


async def create_message(request: Request) -> Response:
    """Anthropic Messages (streaming or not) for any model on the key's roster."""
    response = await pipeline.run(_gateway(request), messages.FORMAT, request)
    return messages.anthropic_ratelimit(request, response)


async def count_message_tokens(request: Request) -> Response:
    """A Messages request's input tokens, free (proxy/token_count.py)."""
    return await token_count.count_tokens(_gateway(request), request)


def _models_errors(request: Request) -> Callable[[errors.Failure, dict[str, str] | None], Response]:
    return errors.anthropic_response if anthropic_models.wanted(request) else errors.openai_response


async def list_models(request: Request) -> Response:
    """The models this key may call, in OpenAI's list format, each with its prices (in
    Anthropic's for a request with an `anthropic-version` header, Gemini's for Google's SDKs)."""
    if gemini_models.wanted(request):
        return await gemini_models.list_models(_gateway(request), request)
    return await _guarded(
        request, lambda: models.list_models(_gateway(request), request), _models_errors(request)
    )


async def get_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    if gemini_models.wanted(request):
        return await gemini_models.get_model(_gateway(request), request, model_id)
    return await _guarded(
        request,
        lambda: models.get_model(_gateway(request), request, model_id),
        _models_errors(request),
    )


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id:anypath}", stored_response, methods=["GET", "DELETE"]),
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_message_tokens, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:anypath}", get_model, methods=["GET"]),
    Route("/v1/embeddings", create_embeddings, methods=["POST"]),
    *gemini_routes.routes,
]
