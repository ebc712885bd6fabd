"""/console/usage: what the viewer's wallet spent, by model, key and day (and by member for
an org's owners and admins) over a range of UTC days (the last 30 unless given), with
filters; the calls themselves a page at a time, newest first; and that page as CSV.

The calls come from usage/service.py (GET /api/v1/me/usage, with its scope: the whole
wallet for whoever manages it, else the viewer's own keys); the sums from usage/reports.py
over the same scope, which read the daily rollups only, so they cost the same over a
million calls as over ten. The calls are narrowed to the range only when one is given: the
latest calls are the latest whatever the day. Either way a page of them is read in the
order of their index (wallet, time, id), never sorted, so a range costs no more."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.console import seats
from bytespike.console.web import Viewer, ctx_of, render
from bytespike.context import Context
from bytespike.money import to_usd_number
from bytespike.usage import reports
from bytespike.usage import service as usage
from bytespike.usage.rollups import DayTotal, Sums

PAGE = 50
CSV_TYPE = "text/csv; charset=utf-8"


def _query(request: Request, *, limit: int = PAGE) -> usage.Query:
    p = request.query_params
    return usage.Query(
        since=usage.parse_day(p.get("since") or None, "since"),
        until=usage.parse_day(p.get("until") or None, "until"),
        key_id=usage.parse_key_id(p.get("key_id") or None),
        model=p.get("model") or None,
        user=p.get("user") or None,
        limit=limit,
        cursor=usage.parse_cursor(p.get("cursor") or None),
        format="csv" if limit > usage.MAX_PAGE else "json",
    )


def _filters(viewer: Viewer, org_id: int | None, scope: str, q: usage.Query) -> dict[str, Any]:
    """The reports' filters that select what /me/usage shows this viewer: an org's wallet
    (all of it for its managers, their own keys for members), else the viewer's keys."""
    org = org_id or (viewer.memberships[0].org_id if viewer.memberships else None)
    filters: dict[str, Any] = {
        "model": q.model,
        "since": None if q.since is None else q.since.date().isoformat(),
        "until": None if q.until is None else q.until.date().isoformat(),
        "key": None if q.key_id is None else str(q.key_id),
        "user": f"id:{viewer.user_id}",
    }
    if viewer.tier == "enterprise" and org is not None:
        filters["org"] = f"id:{org}"
        if scope == "wallet":
            filters["user"] = q.user
    return filters


async def _by_key(ctx: Context, filters: dict[str, Any], managed_org: bool) -> dict[str, Any]:
    """Spend by key, and by member for whoever manages an org's wallet (usage/reports.py)."""
    shown = {"key": reports.as_json(await reports.build(ctx, by="key", **filters))}
    if managed_org:
        shown["user"] = reports.as_json(await reports.build(ctx, by="user", **filters))
    return shown


def _by_model_and_day(days: list[DayTotal], first: date, last: date) -> dict[str, Any]:
    """By model and by day, summed from /me/usage's own per-day-and-model totals (rollups)
    over the span: no second reading of them."""
    models: dict[str, Sums] = {}
    per_day: dict[str, Sums] = {}
    for total in days:
        if first.isoformat() <= total.day <= last.isoformat():
            models[total.model] = models.get(total.model, Sums()) + total.sums
            per_day[total.day] = per_day.get(total.day, Sums()) + total.sums
    return {
        "model": [_line({"model": m}, sums) for m, sums in models.items()],
        "day": [_line({"day": d}, sums) for d, sums in sorted(per_day.items(), reverse=True)],
        "total": _line({}, sum(models.values(), Sums())),
    }


def _line(group: dict[str, Any], sums: Sums) -> dict[str, Any]:
    return {
        **group,
        "requests": sums.requests,
        "input_tokens": sums.input_tokens,
        "output_tokens": sums.output_tokens,
        "cost_usd": to_usd_number(sums.cost_micros),
        "cost_micros": sums.cost_micros,
    }


async def show(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    org_id = seats.chosen_org(viewer, request.query_params.get("org"))
    q = _query(request)
    first, last = reports.span(
        ctx.clock.now().date(),
        None if q.since is None else q.since.date(),
        None if q.until is None else q.until.date(),
    )
    found = await usage.usage(ctx, seats.seat(viewer, org_id), q, span=(first, last))
    filters = _filters(viewer, org_id, found.scope, q)
    sums = await _by_key(ctx, filters, "org" in filters and found.scope == "wallet")
    spread = _by_model_and_day(found.days, first, last)
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    return render(
        request,
        "usage.html",
        viewer=viewer,
        active="usage",
        found=usage.as_json(found),
        sums=sums,
        by_model=sorted(spread["model"], key=lambda line: -line["cost_micros"]),
        by_day=spread["day"],
        total=spread["total"],
        first=first,
        last=last,
        models=ctx.catalog.ids,
        params=params,
        query=q,
        org_id=org_id,
        ranged=q.since is not None or q.until is not None,
    )


async def csv(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    org_id = seats.chosen_org(viewer, request.query_params.get("org"))
    found = await usage.usage(
        ctx, seats.seat(viewer, org_id), _query(request, limit=usage.MAX_CSV_PAGE)
    )
    headers = {"Content-Disposition": 'attachment; filename="bytespike-usage.csv"'}
    if found.next_cursor is not None:
        headers["X-Next-Cursor"] = found.next_cursor
    return Response(usage.as_csv(found), media_type=CSV_TYPE, headers=headers)
