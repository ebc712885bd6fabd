"""/api/v1/admin/...: thin HTTP wrappers over the same services the CLI calls, one module
per area, every route behind the admin token (admin/common.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bytespike.admin import audit, keys, money, orgs, reports, users
from bytespike.admin.common import require_admin

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
for area in (users, orgs, money, keys, reports, audit):
    router.include_router(area.router)
