"""/api/v1/admin/...: thin HTTP wrappers over the same services the CLI calls."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from bytespike.accounts import service as accounts
from bytespike.api import auth
from bytespike.api.responses import JSON
from bytespike.billing import service as billing
from bytespike.context import Context
from bytespike.db.metadata import MAX_ID, stored_id
from bytespike.errors import InvalidRequest, NotFound
from bytespike.keys import service as keys
from bytespike.money import MoneyError, parse_usd
from bytespike.orgs import service as orgs


def require_admin(request: Request) -> Context:
    """The context, for a caller with the admin token (api/guard.py has checked it already,
    before the body; checking again costs nothing and keeps the route safe on its own)."""
    ctx: Context = request.app.state.ctx
    auth.require_admin_token(request, ctx.settings.admin_token)
    return ctx


router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
Admin = Depends(require_admin)


def usd(value: Decimal | int | str, field: str, *, allow_zero: bool = True) -> int:
    try:
        micros = parse_usd(value)
    except MoneyError as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc
    if not allow_zero and micros == 0:
        raise InvalidRequest(f"{field}: must be more than zero")
    return micros


class NewUser(BaseModel):
    username: str
    email: str
    tier: Literal["individual", "enterprise"] = "individual"


class NewOrg(BaseModel):
    name: str


class NewMember(BaseModel):
    username: str
    role: Literal["owner", "admin", "member"]


class WalletOwner(BaseModel):
    user: str | None = None
    org: str | None = None


class TopUpRequest(WalletOwner):
    usd: Decimal
    reference: str | None = Field(default=None, max_length=200)


class ThresholdRequest(WalletOwner):
    threshold_usd: Decimal


class RosterEntry(BaseModel):
    id: str
    cap_usd: Decimal | None = None


class NewKey(BaseModel):
    user: str
    org: str | None = None
    name: str | None = Field(default=None, max_length=200)
    models: list[RosterEntry] | None = None
    rate_limit: int | None = None
    quota_reset: Literal["daily", "weekly", "monthly"] | None = None


@router.post("/users", status_code=201)
async def create_user(body: NewUser, ctx: Context = Admin) -> JSON:
    user = await accounts.create_user(ctx, username=body.username, email=body.email, tier=body.tier)
    return JSON(user, status_code=201)


@router.post("/orgs", status_code=201)
async def create_org(body: NewOrg, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.create(ctx, name=body.name), status_code=201)


@router.post("/orgs/{org}/members")
async def add_member(org: str, body: NewMember, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.add_member(ctx, org=org, username=body.username, role=body.role))


@router.post("/orgs/{org}/pause")
async def pause_org(org: str, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.set_paused(ctx, org=org, paused=True))


@router.post("/orgs/{org}/resume")
async def resume_org(org: str, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.set_paused(ctx, org=org, paused=False))


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


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, ctx: Context = Admin) -> JSON:
    roster: list[tuple[str, int | None]] | None = None
    if body.models is not None:
        roster = [
            (m.id, None if m.cap_usd is None else usd(m.cap_usd, f"cap of {m.id}"))
            for m in body.models
        ]
    created: dict[str, Any] = await keys.create(
        ctx,
        username=body.user,
        org=body.org,
        models=roster,
        rate_limit=body.rate_limit,
        quota_reset=body.quota_reset,
        name=body.name,
    )
    return JSON(created, status_code=201)


def _key_id(
    key_id: Annotated[str, Path(json_schema_extra={"type": "integer", "maximum": MAX_ID})],
) -> int:
    """Taken as text, so an id no key can have (past INTEGER, not an integer) is 404 like
    any missing key, not a 400 from validation or a database error."""
    found = stored_id(key_id)
    if found is None:
        raise NotFound(f"no key {key_id[:40]}")
    return found


@router.post("/keys/{key_id}/revoke")
async def revoke_key(ctx: Context = Admin, key_id: int = Depends(_key_id)) -> JSON:
    return JSON(await keys.revoke(ctx, key_id))
