"""GET/PUT /api/v1/me/notifications: the low-balance threshold of the caller's wallet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt

from bytespike.api.auth import Caller, KeyHolder
from bytespike.api.errors import KEY_ERRORS
from bytespike.api.responses import JSON
from bytespike.errors import InvalidRequest
from bytespike.money import MoneyError, parse_usd
from bytespike.notifications import service

router = APIRouter(prefix="/api/v1/me", tags=["notifications"], responses=KEY_ERRORS)


class NotificationSettings(BaseModel):
    # Strict: "5" or true is not a number of USD, so it is a 400 rather than coerced.
    model_config = ConfigDict(extra="forbid")

    low_balance_threshold_usd: StrictInt | StrictFloat


@router.get("/notifications", summary="The paying wallet's low-balance threshold")
async def get_notifications(request: Request, caller: Caller = KeyHolder) -> JSON:
    found = await service.get(request.app.state.ctx, caller.key)
    return JSON(found, headers=caller.rate_headers)


@router.put("/notifications", summary="Set the low-balance threshold (org: owner or admin)")
async def put_notifications(
    request: Request, body: NotificationSettings, caller: Caller = KeyHolder
) -> JSON:
    try:
        threshold = parse_usd(body.low_balance_threshold_usd)
    except MoneyError as exc:
        raise InvalidRequest(f"low_balance_threshold_usd: {exc}") from exc
    result = await service.set_threshold(request.app.state.ctx, caller.key, threshold)
    return JSON(result, headers=caller.rate_headers)
