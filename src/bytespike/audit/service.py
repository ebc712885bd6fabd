"""Reading the audit log: what operators changed, newest first."""

from __future__ import annotations

from typing import Any

import orjson

from bytespike import pages
from bytespike.audit import repo
from bytespike.clock import as_utc, iso_z
from bytespike.context import Context


async def list_entries(
    ctx: Context, *, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    size, before = pages.checked_limit(limit), pages.parse_cursor(cursor, big=True)
    async with ctx.db.read() as conn:
        rows = await repo.page(conn, before=before, limit=size + 1)
    return pages.page(rows, size, row_id=lambda row: int(row.id), view=_entry)


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": iso_z(as_utc(row.created_at)),
        "actor": row.actor,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "before": _fields(row.before),
        "after": _fields(row.after),
        "request_id": row.request_id,
    }


def _fields(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)
