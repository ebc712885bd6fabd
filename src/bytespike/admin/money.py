"""/api/v1/admin/wallets, /credits, /notifications...: wallets, their money and thresholds."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bytespike.admin.common import Admin, usd
from bytespike.api.responses import JSON
from bytespike.billing import service as billing
from bytespike.context import Context
from bytespike.errors import InvalidRequest
from bytespike.money import MoneyError, parse_usd

router = APIRouter()


class WalletOwner(BaseModel):
    user: str | None = None
    org: str | None = None


class TopUpRequest(WalletOwner):
    usd: Decimal
    reference: str | None = Field(default=None, max_length=200)


class ThresholdRequest(WalletOwner):
    threshold_usd: Decimal


@router.get("/wallets")
async def show_wallet(
    user: str | None = None, org: str | None = None, ctx: Context = Admin
) -> JSON:
    """The wallet of `?user=` or `?org=` (exactly one)."""
    return JSON(await billing.show_wallet(ctx, username=user, org=org))


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


class AdjustRequest(WalletOwner):
    usd: Decimal  # a credit if positive, a debit if negative
    reason: str = Field(max_length=500)
    reference: str | None = Field(default=None, max_length=200)


def _signed_usd(value: Decimal, field: str) -> int:
    try:
        return parse_usd(value, allow_negative=True)
    except MoneyError as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc


@router.post("/credits/adjust")
async def adjust(body: AdjustRequest, ctx: Context = Admin) -> JSON:
    """Credit (usd > 0) or debit (usd < 0) a wallet's available balance, with a reason."""
    result = await billing.adjust(
        ctx,
        amount=_signed_usd(body.usd, "usd"),
        reason=body.reason,
        username=body.user,
        org=body.org,
        reference=body.reference,
    )
    return JSON(result)


@router.get("/ledger/entries")
async def ledger_entries(
    user: str | None = None,
    org: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    ctx: Context = Admin,
) -> JSON:
    """The ledger of `?user=`'s or `?org=`'s wallet, newest first."""
    page = await billing.ledger_entries(ctx, username=user, org=org, limit=limit, cursor=cursor)
    return JSON(page)


@router.get("/ledger/verify")
async def verify_ledger(ctx: Context = Admin) -> JSON:
    """Every invariant of the books; 200 either way, `ok` says whether they hold."""
    return JSON(await billing.verify(ctx))


class RepriceRequest(BaseModel):
    model: str
    since: str  # first UTC day, YYYY-MM-DD
    until: str  # last UTC day, YYYY-MM-DD
    dry_run: bool = False
    reason: str | None = Field(default=None, max_length=500)


@router.post("/ledger/reprice")
async def reprice(body: RepriceRequest, ctx: Context = Admin) -> JSON:
    """Price a model's calls of [since, until] again with the current price book and post
    each wallet's difference as one balanced correction (`bytespike ledger reprice`)."""
    result = await billing.reprice(
        ctx,
        model=body.model,
        since=body.since,
        until=body.until,
        dry_run=body.dry_run,
        reason=body.reason,
    )
    return JSON(result)
