"""/console/: the dashboard. Its first paint is the account payload of the selected key
(GET /api/v1/me/account for it: the same service, the same bytes in #account-payload),
then that wallet's spend per day over 30 days stacked by model, and its latest calls."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.accounts import service as accounts
from bytespike.console import seats
from bytespike.console.web import Viewer, ctx_of, render
from bytespike.keys import service as keys
from bytespike.money import to_usd_number
from bytespike.usage import service as usage
from bytespike.usage.rollups import DayTotal

DAYS = 30
LATEST_CALLS = 10


async def show(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    found = await seats.own_keys(ctx, viewer)
    selected = seats.pick(found, request.query_params.get("key"))
    if selected is None:
        return render(
            request, "dashboard.html", viewer=viewer, active="dashboard", keys=[], selected=None
        )
    record = await keys.record(ctx, int(selected["id"]))
    payload = await accounts.account(ctx, record)
    today = ctx.clock.now().date()
    first = today - timedelta(days=DAYS - 1)
    # No `since`: the latest calls are the latest whatever the day; the days are the chart's.
    spent = await usage.usage(ctx, record, usage.Query(limit=LATEST_CALLS), span=(first, today))
    return render(
        request,
        "dashboard.html",
        viewer=viewer,
        active="dashboard",
        keys=found,
        selected=selected,
        payload=payload,
        chart=spend_chart(spent.days, first, today),
        calls=usage.as_json(spent)["data"],
        scope=spent.scope,
    )


def spend_chart(days: list[DayTotal], first: date, last: date) -> dict[str, Any]:
    """{"days": [...], "series": [{"model", "usd": [per day]}], "totals": [per day]}: models
    with the most spend first, every day from `first` to `last` (zero when nothing)."""
    span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    index = {day.isoformat(): i for i, day in enumerate(span)}
    micros: dict[str, list[int]] = {}
    for total in days:
        if total.day in index:
            row = micros.setdefault(total.model, [0] * len(span))
            row[index[total.day]] += total.sums.cost_micros
    ranked = sorted(micros.items(), key=lambda item: (-sum(item[1]), item[0]))
    return {
        "days": [day.isoformat() for day in span],
        "series": [{"model": m, "usd": [to_usd_number(v) for v in row]} for m, row in ranked],
        "totals": [to_usd_number(sum(row[i] for _, row in ranked)) for i in range(len(span))],
    }
