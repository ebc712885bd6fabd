"""GET /api/v1/me/usage."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from bytespike.api.auth import Caller, KeyHolder
from bytespike.api.errors import KEY_ERRORS
from bytespike.api.responses import JSON
from bytespike.usage import service

router = APIRouter(prefix="/api/v1/me", tags=["usage"], responses=KEY_ERRORS)


@router.get("/usage", summary="Spend per day and model, and the calls themselves (paginated)")
async def get_usage(
    request: Request,
    caller: Caller = KeyHolder,
    since: str | None = Query(None, description="First UTC day included, YYYY-MM-DD"),
    until: str | None = Query(None, description="Last UTC day included, YYYY-MM-DD"),
    limit: int = Query(50, description=f"Calls per page, 1 to {service.MAX_PAGE}"),
    cursor: str | None = Query(None, description="next_cursor from the previous page"),
) -> JSON:
    """`by_day` totals every call in the range; `data` lists the calls newest first, a page
    at a time (follow `next_cursor` while `has_more`)."""
    payload = await service.report(
        request.app.state.ctx,
        caller.key,
        since=service.parse_day(since, "since"),
        until=service.parse_day(until, "until"),
        limit=limit,
        cursor=service.parse_cursor(cursor),
    )
    return JSON(payload, headers=caller.rate_headers)
