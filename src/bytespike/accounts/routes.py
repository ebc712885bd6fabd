"""GET /api/v1/me/account: the console dashboard's payload, for the key's holder."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bytespike.accounts import service
from bytespike.accounts.schemas import Account
from bytespike.api.auth import Caller, KeyHolder
from bytespike.api.errors import KEY_ERRORS
from bytespike.api.responses import JSON

router = APIRouter(prefix="/api/v1/me", tags=["account"], responses=KEY_ERRORS)


@router.get(
    "/account",
    summary="Balance, model roster with quota use, profile and org",
    responses={200: {"model": Account, "description": "Free: never writes to the ledger"}},
)
async def get_account(request: Request, caller: Caller = KeyHolder) -> JSON:
    payload = await service.account(request.app.state.ctx, caller.key)
    return JSON(payload, headers=caller.rate_headers)
