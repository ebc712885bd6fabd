"""/api/v1/admin/audit: the audit log."""

from __future__ import annotations

from fastapi import APIRouter

from bytespike.admin.common import Admin
from bytespike.api.responses import JSON
from bytespike.audit import service as audit
from bytespike.context import Context

router = APIRouter()


@router.get("/audit")
async def list_audit(
    limit: int | None = None, cursor: str | None = None, ctx: Context = Admin
) -> JSON:
    """What operators changed, newest first."""
    return JSON(await audit.list_entries(ctx, limit=limit, cursor=cursor))
