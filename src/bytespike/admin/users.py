"""/api/v1/admin/users...: users."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from bytespike.accounts import service as accounts
from bytespike.admin.common import Admin
from bytespike.api.responses import JSON
from bytespike.context import Context

router = APIRouter()


class NewUser(BaseModel):
    username: str
    email: str
    tier: Literal["individual", "enterprise"] = "individual"


@router.post("/users", status_code=201)
async def create_user(body: NewUser, ctx: Context = Admin) -> JSON:
    user = await accounts.create_user(ctx, username=body.username, email=body.email, tier=body.tier)
    return JSON(user, status_code=201)
