"""The client-facing model APIs: OpenAI's /v1/chat/completions and /v1/models, Anthropic's
/v1/messages. Failures leave in the client's own error format (proxy/errors.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bytespike.errors import BytespikeError
from bytespike.proxy import chat, errors, messages, models
from bytespike.proxy.pipeline import Gateway

log = logging.getLogger(__name__)
router = APIRouter(tags=["model APIs"])

_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _guarded(
    run: Callable[[], Awaitable[Response]], render: Callable[[errors.Failure], Response]
) -> Response:
    try:
        return await run()
    except BytespikeError as exc:
        return render(exc)


@router.post("/v1/chat/completions", openapi_extra=_BODY)
async def chat_completions(request: Request) -> Response:
    """OpenAI Chat Completions (streaming or not) for any model on the key's roster."""
    return await _guarded(lambda: chat.handle(_gateway(request), request), errors.openai_response)


@router.post("/v1/messages", openapi_extra=_BODY)
async def create_message(request: Request) -> Response:
    """Anthropic Messages (streaming or not) for any model on the key's roster."""
    return await _guarded(
        lambda: messages.handle(_gateway(request), request), errors.anthropic_response
    )


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    """The models this key may call, in OpenAI's list format, each with its prices."""
    return await _guarded(
        lambda: models.list_models(_gateway(request), request), errors.openai_response
    )


@router.get("/v1/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> Response:
    return await _guarded(
        lambda: models.get_model(_gateway(request), request, model_id), errors.openai_response
    )
