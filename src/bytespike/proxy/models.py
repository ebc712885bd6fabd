"""GET /v1/models: the OpenAI model list, only what this key may call, with prices; in
Anthropic's shape for requests with an `anthropic-version` header (anthropic_models.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api import auth
from bytespike.api.responses import JSON
from bytespike.catalog import Model
from bytespike.errors import ModelNotFound
from bytespike.keys import service as keys
from bytespike.proxy import anthropic_models
from bytespike.proxy.pipeline import Gateway

# The catalog has no release dates; a fixed epoch keeps listings stable (OpenAI requires one).
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z


def entry(model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": CREATED,
        "owned_by": model.provider,
        "pricing": {
            "input_usd_per_mtok": float(model.input_usd_per_mtok),
            "output_usd_per_mtok": float(model.output_usd_per_mtok),
        },
        "context_window": model.context_tokens,
        "max_output_tokens": model.max_output_tokens,
    }


async def _allowed(gw: Gateway, request: Request) -> tuple[list[Model], dict[str, str]]:
    # Not the hot path: the key is read live (no cache), so a revocation shows at once.
    caller = await auth.gate(request, gw.ctx, gw.limiter)
    async with gw.ctx.db.read() as conn:
        allowed = {model for model, _cap in await keys.roster(gw.ctx, conn, caller.key)}
    return [m for m in gw.ctx.catalog.models if m.id in allowed], caller.rate_headers


async def list_models(gw: Gateway, request: Request) -> Response:
    models, headers = await _allowed(gw, request)
    if anthropic_models.wanted(request):
        listing = anthropic_models.page(models, request.query_params, CREATED)
        return JSON(listing, headers=headers)
    return JSON({"object": "list", "data": [entry(m) for m in models]}, headers=headers)


async def get_model(gw: Gateway, request: Request, model_id: str) -> Response:
    models, headers = await _allowed(gw, request)
    for model in models:
        if model.id == model_id:
            wanted = anthropic_models.wanted(request)
            shown = anthropic_models.entry(model, CREATED) if wanted else entry(model)
            return JSON(shown, headers=headers)
    raise ModelNotFound(f"the model {model_id!r} does not exist")
