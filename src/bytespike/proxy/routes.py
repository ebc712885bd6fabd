"""The client-facing model APIs: OpenAI's /v1/chat/completions and /v1/models, Anthropic's
/v1/messages. Failures leave in the client's own error format (proxy/errors.py).

Plain Starlette routes, not FastAPI ones: these bodies are free-form provider payloads that
FastAPI would not validate anyway, and its per-request machinery (dependency solving, an
exit stack) measurably costs on the hot path. They are documented in the README, after
OpenAI's and Anthropic's own references.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bytespike.errors import BytespikeError
from bytespike.proxy import chat, errors, messages, models, pipeline
from bytespike.proxy.pipeline import Gateway

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


async def create_message(request: Request) -> Response:
    """Anthropic Messages (streaming or not) for any model on the key's roster."""
    return await pipeline.run(_gateway(request), messages.FORMAT, request)


async def list_models(request: Request) -> Response:
    """The models this key may call, in OpenAI's list format, each with its prices."""
    return await _guarded(
        request, lambda: models.list_models(_gateway(request), request), errors.openai_response
    )


async def get_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    return await _guarded(
        request,
        lambda: models.get_model(_gateway(request), request, model_id),
        errors.openai_response,
    )


class _AnyPath(Convertor[str]):
    """Starlette's `path` stops at a newline; a model id with one must still reach the
    route (and get OpenAI's 404), not fall through to the API's generic one."""

    regex = "[\\s\\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())

routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:anypath}", get_model, methods=["GET"]),
]
