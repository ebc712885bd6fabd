"""/api/v1/admin/users...: users."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from bytespike.accounts import service as accounts
from bytespike.admin.common import Admin
from bytespike.api.responses import JSON
from bytespike.context import Context

router = APIRouter()


class NewUser(BaseModel):
    username: str
    email: str
    tier: Literal["individual", "enterprise"] = "individual"


class UserChanges(BaseModel):
    # A misspelt field is refused rather than ignored: a correction that silently changes
    # nothing would be worse than a 400.
    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    tier: Literal["individual", "enterprise"] | None = None


@router.post("/users", status_code=201)
async def create_user(body: NewUser, ctx: Context = Admin) -> JSON:
    user = await accounts.create_user(ctx, username=body.username, email=body.email, tier=body.tier)
    return JSON(user, status_code=201)


@router.get("/users")
async def list_users(
    org: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    ctx: Context = Admin,
) -> JSON:
    return JSON(await accounts.list_users(ctx, org=org, limit=limit, cursor=cursor))


@router.get("/users/{user}")
async def show_user(user: str, ctx: Context = Admin) -> JSON:
    return JSON(await accounts.show_user(ctx, user))


@router.patch("/users/{user}")
async def update_user(user: str, body: UserChanges, ctx: Context = Admin) -> JSON:
    return JSON(await accounts.update_user(ctx, user, email=body.email, tier=body.tier))


@router.post("/users/{user}/suspend")
async def suspend_user(user: str, ctx: Context = Admin) -> JSON:
    return JSON(await accounts.set_suspended(ctx, user, suspended=True))


@router.post("/users/{user}/unsuspend")
async def unsuspend_user(user: str, ctx: Context = Admin) -> JSON:
    return JSON(await accounts.set_suspended(ctx, user, suspended=False))
