"""Cursor pagination, the same for every operator list: `{"data": [...], "next_cursor": C}`.

A cursor is the id of the last row of the previous page, as text: opaque to callers, who
pass back what they were given. A list walks its table by id (ascending for things people
made: users, orgs, keys; newest first for histories: ledger entries, the audit log).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bytespike.db.metadata import stored_id
from bytespike.errors import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")


def checked_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def parse_cursor(value: str | None, *, big: bool = False) -> int | None:
    """The id a cursor stands for; 400 for anything no page ever handed out."""
    if value is None or value == "":
        return None
    cursor = stored_id(value, big=big)
    if cursor is None:
        raise InvalidRequest("cursor must be the next_cursor of a previous page")
    return cursor


def page(
    rows: Sequence[T], limit: int, *, row_id: Callable[[T], int], view: Callable[[T], Any]
) -> dict[str, Any]:
    """A page from `rows`, fetched with `limit + 1` so that one extra row says there is more."""
    more = len(rows) > limit
    kept = rows[:limit]
    return {
        "data": [view(row) for row in kept],
        "next_cursor": str(row_id(kept[-1])) if more and kept else None,
    }
