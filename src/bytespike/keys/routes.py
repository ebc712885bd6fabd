"""GET /api/v1/me/key: the calling key itself, for its holder."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bytespike.api.auth import Caller, KeyHolder
from bytespike.api.errors import KEY_ERRORS
from bytespike.api.responses import JSON
from bytespike.keys import service

router = APIRouter(prefix="/api/v1/me", tags=["account"], responses=KEY_ERRORS)


@router.get("/key", summary="This key: name, prefix, budget and spend, rate limit, expiry")
async def get_key(request: Request, caller: Caller = KeyHolder) -> JSON:
    """The key as its operator sees it (never its secret): its budget with this period's
    spend, its lifetime spend, its roster with caps, its rate limit and expiry."""
    payload = await service.holder_view(request.app.state.ctx, caller.key)
    return JSON(payload, headers=caller.rate_headers)
