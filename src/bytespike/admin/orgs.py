"""/api/v1/admin/orgs...: orgs and their members."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from bytespike.admin.common import Admin
from bytespike.api.responses import JSON
from bytespike.context import Context
from bytespike.orgs import service as orgs

router = APIRouter()


class NewOrg(BaseModel):
    name: str


class OrgChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class NewMember(BaseModel):
    username: str
    role: Literal["owner", "admin", "member"]


@router.post("/orgs", status_code=201)
async def create_org(body: NewOrg, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.create(ctx, name=body.name), status_code=201)


@router.get("/orgs")
async def list_orgs(
    limit: int | None = None, cursor: str | None = None, ctx: Context = Admin
) -> JSON:
    return JSON(await orgs.list_orgs(ctx, limit=limit, cursor=cursor))


@router.get("/orgs/{org}")
async def show_org(org: str, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.show(ctx, org))


@router.patch("/orgs/{org}")
async def rename_org(org: str, body: OrgChanges, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.rename(ctx, org=org, name=body.name))


@router.post("/orgs/{org}/members")
async def add_member(org: str, body: NewMember, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.add_member(ctx, org=org, username=body.username, role=body.role))


@router.delete("/orgs/{org}/members/{user}")
async def remove_member(org: str, user: str, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.remove_member(ctx, org=org, username=user))


@router.post("/orgs/{org}/pause")
async def pause_org(org: str, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.set_paused(ctx, org=org, paused=True))


@router.post("/orgs/{org}/resume")
async def resume_org(org: str, ctx: Context = Admin) -> JSON:
    return JSON(await orgs.set_paused(ctx, org=org, paused=False))
