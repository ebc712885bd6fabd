"""/api/v1/admin/audit: the audit log."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
