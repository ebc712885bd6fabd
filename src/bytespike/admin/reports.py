"""/api/v1/admin/usage...: usage reports over any wallet."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.responses import Response

from bytespike.admin.common import Admin
from bytespike.api.responses import JSON
from bytespike.context import Context
from bytespike.errors import InvalidRequest
from bytespike.usage import reports

router = APIRouter()

FORMATS = ("json", "csv")


@router.get(
    "/usage/report",
    summary="Requests, tokens, cost and refused calls per user, key, model, day or org",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def usage_report(
    ctx: Context = Admin,
    by: str = Query(..., description=f"Group by: {', '.join(reports.BYS)}"),
    org: str | None = Query(None, description="Only this org's wallet (name or id)"),
    user: str | None = Query(None, description="Only this user's keys (username or id)"),
    key: str | None = Query(None, description="Only this key (its id)"),
    model: str | None = Query(None, description="Only this model (leaves refusals out)"),
    since: str | None = Query(None, description="First UTC day, YYYY-MM-DD (default: until - 29)"),
    until: str | None = Query(None, description="Last UTC day, YYYY-MM-DD (default: today)"),
    fmt: str = Query("json", alias="format", description="json, or csv with a header row"),
) -> Response:
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
    report = await reports.build(
        ctx, by=by, org=org, user=user, key=key, model=model, since=since, until=until
    )
    if fmt == "csv":
        return Response(reports.as_csv(report), media_type="text/csv; charset=utf-8")
    return JSON(reports.as_json(report))
