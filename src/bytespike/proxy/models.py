"""GET /v1/models: the OpenAI model list, only what this key may call, with prices; in
Anthropic's shape for requests with an `anthropic-version` header (anthropic_models.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api import auth
from bytespike.api.responses import JSON
from bytespike.billing.pricebook import (
    TOKEN_CLASSES,
    Period,
    PriceBook,
    Rates,
    fee_field,
    field,
)
from bytespike.catalog import Model
from bytespike.clock import iso_z
from bytespike.errors import ModelNotFound
from bytespike.keys import service as keys
from bytespike.proxy import anthropic_models
from bytespike.proxy.pipeline import Gateway

# The catalog has no release dates; a fixed epoch keeps listings stable (OpenAI requires one).
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z


def entry(model: Model, now: datetime) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": CREATED,
        "owned_by": model.provider,
        "pricing": pricing(model.prices, now),
        "context_window": model.context_tokens,
        "max_output_tokens": model.max_output_tokens,
    }


def pricing(book: PriceBook, now: datetime) -> dict[str, Any]:
    """The prices in force now, every class and tier (docs/pricing.md), and the periods
    scheduled to follow."""
    return {
        **_period(book.at(now)),
        "scheduled": [_period(period) for period in book.upcoming(now)],
    }


def _period(period: Period) -> dict[str, Any]:
    starts = period.starts
    return {
        "period": period.id,
        "effective_from": None if starts is None else iso_z(starts),
        **_rates(period.base),
        **{fee_field(name): float(price) for name, price in period.fees},
        "tiers": [
            {"above_prompt_tokens": tier.above, **_rates(tier.rates)} for tier in period.tiers[1:]
        ],
    }


def _rates(rates: Rates) -> dict[str, float]:
    return {field(name): float(rates.of(name)) for name in TOKEN_CLASSES}


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
    now = gw.ctx.clock.now()
    return JSON({"object": "list", "data": [entry(m, now) for m in models]}, headers=headers)


async def get_model(gw: Gateway, request: Request, model_id: str) -> Response:
    models, headers = await _allowed(gw, request)
    for model in models:
        if model.id == model_id:
            wanted = anthropic_models.wanted(request)
            now = gw.ctx.clock.now()
            shown = anthropic_models.entry(model, CREATED) if wanted else entry(model, now)
            return JSON(shown, headers=headers)
    raise ModelNotFound(f"the model {model_id!r} does not exist")
