"""SQL for reading the audit log back (writing is `log.record`'s)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.audit.tables import audit_log


async def page(conn: AsyncConnection, *, before: int | None, limit: int) -> list[sa.Row[Any]]:
    """Up to `limit` entries, newest first, older than entry `before` if given."""
    a = audit_log.c
    query = sa.select(audit_log).order_by(a.id.desc()).limit(limit)
    if before is not None:
        query = query.where(a.id < before)
    return list(await conn.execute(query))
