"""GET /api/v1/me/usage."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from bytespike.api.auth import Caller, KeyHolder
from bytespike.api.errors import KEY_ERRORS
from bytespike.api.responses import JSON
from bytespike.usage import service

router = APIRouter(prefix="/api/v1/me", tags=["usage"], responses=KEY_ERRORS)

CSV_TYPE = "text/csv; charset=utf-8"


@router.get(
    "/usage",
    summary="Spend per day and model, and the calls themselves (paginated)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def get_usage(
    request: Request,
    caller: Caller = KeyHolder,
    since: str | None = Query(None, description="First UTC day included, YYYY-MM-DD"),
    until: str | None = Query(None, description="Last UTC day included, YYYY-MM-DD"),
    key_id: str | None = Query(None, description="Only this key's calls"),
    model: str | None = Query(None, description="Only calls of this model"),
    user: str | None = Query(
        None, description="Only this user's keys (username or id; the wallet's owners and admins)"
    ),
    fmt: str = Query("json", alias="format", description="json, or csv: the page of calls"),
    limit: int = Query(
        50,
        description=f"Calls per page, 1 to {service.MAX_PAGE} ({service.MAX_CSV_PAGE} as CSV)",
    ),
    cursor: str | None = Query(None, description="next_cursor from the previous page"),
) -> Response:
    """`by_day` totals every call in the range; `data` lists the calls newest first, a page
    at a time (follow `next_cursor` while `has_more`). As CSV: the page of calls, with the
    next page's cursor in the `X-Next-Cursor` header (absent on the last page)."""
    query = service.Query(
        since=service.parse_day(since, "since"),
        until=service.parse_day(until, "until"),
        key_id=service.parse_key_id(key_id),
        model=model,
        user=user,
        limit=limit,
        cursor=service.parse_cursor(cursor),
        format=fmt,
    )
    found = await service.usage(request.app.state.ctx, caller.key, query)
    if query.format == "csv":
        headers = dict(caller.rate_headers)
        if found.next_cursor is not None:
            headers["X-Next-Cursor"] = found.next_cursor
        return Response(service.as_csv(found), media_type=CSV_TYPE, headers=headers)
    return JSON(service.as_json(found), headers=caller.rate_headers)


@router.get("/usage/{record_id}", summary="One call's receipt: its lines, cost, hold and entries")
async def get_receipt(request: Request, record_id: str, caller: Caller = KeyHolder) -> Response:
    """The call's usage by class, each line tokens times unit price = amount (exact decimal
    USD), their sum rounded up once to the micro-dollar (the cost), what was charged, the
    hold and ledger entries that moved the money, and any later price correction. `id`
    is a call's `id` from /usage."""
    found = await service.receipt(request.app.state.ctx, caller.key, record_id)
    return JSON(found, headers=caller.rate_headers)
