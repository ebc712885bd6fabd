"""/api/v1/admin/usage...: usage reports over any wallet."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
