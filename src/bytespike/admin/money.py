"""/api/v1/admin/credits, /notifications...: wallets, their money and thresholds."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bytespike.admin.common import Admin, usd
from bytespike.api.responses import JSON
from bytespike.billing import service as billing
from bytespike.context import Context

router = APIRouter()


class WalletOwner(BaseModel):
    user: str | None = None
    org: str | None = None


class TopUpRequest(WalletOwner):
    usd: Decimal
    reference: str | None = Field(default=None, max_length=200)


class ThresholdRequest(WalletOwner):
    threshold_usd: Decimal


@router.post("/credits/topup")
async def top_up(body: TopUpRequest, ctx: Context = Admin) -> JSON:
    result = await billing.top_up(
        ctx,
        amount=usd(body.usd, "usd", allow_zero=False),
        username=body.user,
        org=body.org,
        reference=body.reference,
    )
    return JSON(result)


@router.put("/notifications")
async def set_threshold(body: ThresholdRequest, ctx: Context = Admin) -> JSON:
    result = await billing.set_threshold(
        ctx,
        threshold=usd(body.threshold_usd, "threshold_usd"),
        username=body.user,
        org=body.org,
    )
    return JSON(result)
