"""Readable tables for the CLI's lists and reports (with --json, the same data as JSON)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

Column = tuple[str, str | Callable[[dict[str, Any]], Any]]  # header, field or getter


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as aligned columns under their headers; "(none)" for no rows."""
    if not rows:
        return "(none)"
    cells = [
        [_cell(get(row) if callable(get) else row.get(get)) for _, get in columns] for row in rows
    ]
    headers = [header for header, _ in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def listing(result: dict[str, Any], columns: Sequence[Column]) -> str:
    """A page of a list as a table, and how to get the next page if there is one."""
    text = table(result["data"], columns)
    if result.get("next_cursor"):
        text += f"\n(more: add --cursor {result['next_cursor']})"
    return text


def fields(obj: dict[str, Any], names: Sequence[str] | None = None) -> str:
    """One object as `name: value` lines (nested objects and lists as compact JSON)."""
    lines = []
    for name in names or list(obj):
        value = obj.get(name)
        text = orjson.dumps(value).decode() if isinstance(value, dict | list) else _cell(value)
        lines.append(f"{name}: {text}")
    return "\n".join(lines)
