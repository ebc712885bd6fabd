"""Usage reports over any wallet (the CLI's `usage report`, the admin API's
/usage/report): requests, tokens, cost and refused calls per user, key, model, UTC day or
org, over a span of whole UTC days.

They read the daily rollups only (usage/rollups.py), so a report costs the same over a
million calls as over ten. Refusals carry no model: grouped by model they are one row of
their own ("-"), and a model filter leaves them out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts import repo as users_repo
from bytespike.billing import wallets
from bytespike.context import Context
from bytespike.db.metadata import stored_id
from bytespike.errors import InvalidRequest, NotFound
from bytespike.keys import repo as keys_repo
from bytespike.money import to_usd_number, to_usd_text
from bytespike.orgs import repo as orgs_repo
from bytespike.usage.rollups import Scope, Sums, day_of, refusals_by, usage_by

BYS = ("user", "key", "model", "day", "org")
# A report's days when none are given: the 30 UTC days ending today (the context's clock).
DEFAULT_DAYS = 30
NONE = "-"  # the org of individual wallets; the model of refusals

# Each grouping's own columns, and the rollup grain it is summed from.
COLUMNS = {
    "user": ("user_id", "username"),
    "key": ("key_id", "name", "prefix", "username"),
    "model": ("model",),
    "day": ("day",),
    "org": ("org_id", "org"),
}
_GRAIN = {"user": "key", "key": "key", "model": "model", "day": "day", "org": "wallet"}
SUMMED = ("requests", "input_tokens", "output_tokens", "cached_tokens")


@dataclass
class Line:
    """One row of a report: its group (COLUMNS[by]), its sums and its refusals by reason."""

    group: tuple[Any, ...]
    sums: Sums = field(default_factory=Sums)
    refused: dict[str, int] = field(default_factory=dict)

    def add_refused(self, reason: str, count: int) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + count


@dataclass(frozen=True, slots=True)
class Report:
    by: str
    since: date
    until: date
    lines: list[Line]

    @property
    def totals(self) -> Line:
        total = Line(())
        for line in self.lines:
            total.sums += line.sums
            for reason, count in line.refused.items():
                total.add_refused(reason, count)
        return total


def parse_day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be a date like 2026-03-10") from exc


def span(today: date, since: date | None, until: date | None) -> tuple[date, date]:
    """The report's days: as given, else DEFAULT_DAYS ending `until` (default: today)."""
    until = until or today
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise InvalidRequest(f"since ({since}) is after until ({until})")
    return since, until


async def build(
    ctx: Context,
    *,
    by: str,
    org: str | None = None,
    user: str | None = None,
    key: str | None = None,
    model: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Report:
    if by not in BYS:
        raise InvalidRequest(f"by must be one of {', '.join(BYS)}")
    today = day_of(ctx.clock.now())
    first, last = span(today, parse_day(since, "since"), parse_day(until, "until"))
    async with ctx.db.read() as conn:
        scope = await _scope(conn, org=org, user=user, key=key, model=model)
        lines = await _lines(conn, by, replace(scope, since=first, until=last))
    return Report(by, first, last, _sorted(by, lines))


async def _scope(
    conn: AsyncConnection, *, org: str | None, user: str | None, key: str | None, model: str | None
) -> Scope:
    """The filters, each naming something that exists (404 otherwise)."""
    wallet_id = user_id = None
    key_ids = None
    if org is not None:
        found = await orgs_repo.required(conn, org)
        wallet_id = await wallets.id_for(conn, org_id=found.id)
        if wallet_id is None:  # every org is made with its wallet; never report everything
            raise NotFound(f"org {org!r} has no wallet")
    if user is not None:
        person = await users_repo.required(conn, user)
        user_id = person.id
    if key is not None:
        key_id = stored_id(key)
        if key_id is None or not await keys_repo.exists(conn, key_id):
            raise NotFound(f"no key {key[:40]}")
        key_ids = [key_id]
    return Scope(wallet_id=wallet_id, user_id=user_id, key_ids=key_ids, model=model)


def _group(by: str, labels: Sequence[Any]) -> tuple[Any, ...]:
    """A rollup group's labels (usage/rollups.py's `_labelled`) as the report's group."""
    if by == "user":  # key id, name, prefix, user id, username
        return (labels[3], labels[4])
    if by == "key":
        return (labels[0], labels[1], labels[2], labels[4])
    if by == "org":  # wallet id, org id, org name
        return (labels[1], labels[2] or NONE)
    if by == "day":
        return (labels[0].isoformat(),)
    return (labels[0] or NONE,)


async def _lines(conn: AsyncConnection, by: str, scope: Scope) -> list[Line]:
    grain = _GRAIN[by]
    lines: dict[tuple[Any, ...], Line] = {}
    for labels, sums in await usage_by(conn, grain, scope):
        line = lines.setdefault(_group(by, labels), Line(_group(by, labels)))
        line.sums += sums
    for labels, reason, count in await refusals_by(conn, grain, scope):
        group = _group(by, labels)
        lines.setdefault(group, Line(group)).add_refused(reason, count)
    return list(lines.values())


def _sorted(by: str, lines: list[Line]) -> list[Line]:
    if by == "day":
        return sorted(lines, key=lambda line: str(line.group[0]))
    # Most spent first; ties in a fixed order (by the group's text).
    return sorted(lines, key=lambda line: (-line.sums.cost_micros, str(line.group)))


def as_json(report: Report) -> dict[str, Any]:
    return {
        "object": "usage_report",
        "by": report.by,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "data": [_json_line(report.by, line) for line in report.lines],
        "totals": _figures(report.totals),
    }


def _json_line(by: str, line: Line) -> dict[str, Any]:
    return dict(zip(COLUMNS[by], line.group, strict=True)) | _figures(line)


def _figures(line: Line) -> dict[str, Any]:
    sums = line.sums
    return {
        **{name: getattr(sums, name) for name in SUMMED},
        "cost_usd": to_usd_number(sums.cost_micros),
        "refused": sum(line.refused.values()),
        "refused_by_reason": dict(sorted(line.refused.items())),
    }


def as_csv(report: Report) -> str:
    """A header row, then one row per line (cost as exact decimal USD text; no totals row,
    so the file sums like any other column of rows)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*COLUMNS[report.by], *SUMMED, "cost_usd", "refused"])
    for line in report.lines:
        sums = line.sums
        writer.writerow(
            [
                *("" if value is None else value for value in line.group),
                *(getattr(sums, name) for name in SUMMED),
                to_usd_text(sums.cost_micros),
                sum(line.refused.values()),
            ]
        )
    return out.getvalue()
