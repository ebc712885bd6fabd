"""/api/v1/admin/keys...: API keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from bytespike.admin.common import Admin, key_id_param, usd
from bytespike.api.responses import JSON
from bytespike.context import Context
from bytespike.keys import service as keys

router = APIRouter()


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


@router.post("/keys/{key_id}/revoke")
async def revoke_key(ctx: Context = Admin, key_id: int = Depends(key_id_param)) -> JSON:
    return JSON(await keys.revoke(ctx, key_id))


@router.get("/keys")
async def list_keys(
    ctx: Context = Admin,
    user: str | None = None,
    org: str | None = None,
    revoked: bool = False,
    limit: int | None = None,
    cursor: str | None = None,
) -> JSON:
    """Keys by id; revoked ones too with `revoked=true`."""
    found = await keys.list_keys(
        ctx, user=user, org=org, revoked=revoked, limit=limit, cursor=cursor
    )
    return JSON(found)


@router.get("/keys/{key_id}")
async def show_key(ctx: Context = Admin, key_id: int = Depends(key_id_param)) -> JSON:
    return JSON(await keys.show(ctx, key_id))


class KeyUpdate(BaseModel):
    """Only the fields given change; null (or "none") clears a setting that can be cleared."""

    name: str | None = Field(default=None, max_length=200)
    models: list[RosterEntry] | None = None
    remove_models: list[str] | None = None
    rate_limit: int | None = None
    quota_reset: Literal["daily", "weekly", "monthly", "none"] | None = None
    budget_usd: Decimal | Literal["none"] | None = None
    budget_reset: Literal["daily", "weekly", "monthly", "none"] | None = None
    expires_at: str | None = Field(default=None, max_length=64)

    def cleared(self, field: str) -> bool:
        return field in self.model_fields_set and getattr(self, field) in (None, keys.CLEAR)


@router.patch("/keys/{key_id}")
async def update_key(
    body: KeyUpdate, ctx: Context = Admin, key_id: int = Depends(key_id_param)
) -> JSON:
    def setting(field: str) -> str | None:
        return keys.CLEAR if body.cleared(field) else getattr(body, field)

    budget: int | str | None = keys.CLEAR if body.cleared("budget_usd") else None
    if isinstance(body.budget_usd, Decimal):
        budget = usd(body.budget_usd, "budget_usd")
    changes = keys.KeyChanges(
        name=body.name if "name" in body.model_fields_set and body.name is not None else None,
        models=None
        if body.models is None
        else [
            (m.id, None if m.cap_usd is None else usd(m.cap_usd, f"cap of {m.id}"))
            for m in body.models
        ],
        remove_models=body.remove_models,
        rate_limit=body.rate_limit,
        quota_reset=setting("quota_reset"),
        budget=budget,
        budget_reset=setting("budget_reset"),
        expires_at=setting("expires_at"),
    )
    return JSON(await keys.update(ctx, key_id, changes))


class Roll(BaseModel):
    grace_seconds: int = 0


@router.post("/keys/{key_id}/roll")
async def roll_key(
    body: Roll | None = None, ctx: Context = Admin, key_id: int = Depends(key_id_param)
) -> JSON:
    """A new secret, shown once; the old one works `grace_seconds` more."""
    return JSON(
        await keys.roll(ctx, key_id, grace_seconds=0 if body is None else body.grace_seconds)
    )
