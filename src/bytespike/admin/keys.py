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
