"""GET /api/v1/me/account: the console dashboard's payload, for the key's holder."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bytespike.accounts import service
from bytespike.api.auth import gate
from bytespike.api.responses import JSON

router = APIRouter(prefix="/api/v1/me", tags=["account"])


@router.get("/account", summary="Balance, model roster with quota use, profile and org")
async def get_account(request: Request) -> JSON:
    state = request.app.state
    caller = await gate(request, state.ctx, state.limiter)
    payload = await service.account(state.ctx, caller.key)
    return JSON(payload, headers=caller.rate_headers)
