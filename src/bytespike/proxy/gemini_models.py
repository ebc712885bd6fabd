"""GET /v1beta/models and /v1beta/models/{model} in Gemini's shape: the models this key may
call. The same paths under /v1/ are OpenAI's too (proxy/models.py); there a request of
Google's SDKs (`x-goog-api-key`, `?key=` or their `x-goog-api-client` header) gets this shape.

Gemini's `Model`: `name` ("models/<id>"), `displayName`, `description`,
`inputTokenLimit`, `outputTokenLimit` and `supportedGenerationMethods` (what the model's
kind answers here). A list is one page of `pageSize` models (50 unless asked, at most
1,000), with a `nextPageToken` while more follow; the catalog's order, as every listing.
Refusals in Gemini's envelope.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api import auth
from bytespike.api.responses import JSON
from bytespike.catalog import Model
from bytespike.errors import BytespikeError, InvalidRequest, ModelNotFound
from bytespike.keys import service as keys
from bytespike.proxy import gemini_errors
from bytespike.proxy.pipeline import Gateway

DEFAULT_PAGE = 50
MAX_PAGE = 1000
METHODS = {
    "chat": ["generateContent", "streamGenerateContent", "countTokens"],
    "embedding": ["embedContent", "batchEmbedContents", "countTokens"],
}


def wanted(request: Request) -> bool:
    """A request from Google's SDKs, on a path OpenAI's share."""
    headers = request.headers
    google = "x-goog-api-key" in headers or "x-goog-api-client" in headers
    return google or "key" in request.query_params


def entry(model: Model) -> dict[str, Any]:
    return {
        "name": f"models/{model.id}",
        "displayName": model.id,
        "description": f"{model.id} ({model.provider}) through bytespike",
        "inputTokenLimit": model.context_tokens,
        "outputTokenLimit": model.max_output_tokens,
        "supportedGenerationMethods": METHODS[model.kind],
    }


async def list_models(gw: Gateway, request: Request) -> Response:
    try:
        models, headers = await _allowed(gw, request)
        start, size = _page(request)
    except BytespikeError as refusal:
        return gemini_errors.response(refusal, _rate_headers(request))
    page: dict[str, Any] = {"models": [entry(m) for m in models[start : start + size]]}
    if start + size < len(models):
        page["nextPageToken"] = str(start + size)
    return JSON(page, headers=headers)


async def get_model(gw: Gateway, request: Request, model_id: str) -> Response:
    try:
        models, headers = await _allowed(gw, request)
        name = model_id.removeprefix("models/")
        found = next((m for m in models if m.id == name), None)
        if found is None:
            raise ModelNotFound(f"models/{name} is not found")
    except BytespikeError as refusal:
        return gemini_errors.response(refusal, _rate_headers(request))
    return JSON(entry(found), headers=headers)


async def _allowed(gw: Gateway, request: Request) -> tuple[list[Model], dict[str, str]]:
    # As OpenAI's listing: the key read live, so a revocation shows at once.
    caller = await auth.gate(request, gw.ctx, gw.limiter)
    async with gw.ctx.db.read() as conn:
        allowed = {model for model, _cap in await keys.roster(gw.ctx, conn, caller.key)}
    return [m for m in gw.ctx.catalog.models if m.id in allowed], caller.rate_headers


def _page(request: Request) -> tuple[int, int]:
    """(start, size) of the page asked for; 400 for a size or token that is not one."""
    size, token = request.query_params.get("pageSize"), request.query_params.get("pageToken")
    if size is not None and not (size.isascii() and size.isdigit()):
        raise InvalidRequest("pageSize: must be a whole number", param="pageSize")
    if token and not (token.isascii() and token.isdigit()):
        raise InvalidRequest("pageToken: not a token this listing gave", param="pageToken")
    # Like Google's: 0 (or none) means the default, and past the most is the most.
    return int(token or 0), min(int(size or 0) or DEFAULT_PAGE, MAX_PAGE)


def _rate_headers(request: Request) -> dict[str, str] | None:
    headers: dict[str, str] | None = request.scope.get("state", {}).get("rate_headers")
    return headers
