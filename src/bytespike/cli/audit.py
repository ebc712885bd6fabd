"""bytespike audit ..."""

from __future__ import annotations

from typing import Any

import orjson
import typer

from bytespike.audit import service
from bytespike.cli.runner import JsonFlag, run
from bytespike.cli.tables import Column, listing

app = typer.Typer(help="Read the audit log.", no_args_is_help=True)


def _changes(entry: dict[str, Any]) -> str:
    """What changed, `field: before -> after`, for the fields that did."""
    before, after = entry["before"] or {}, entry["after"] or {}
    shown = []
    for name in [*before, *(n for n in after if n not in before)]:
        old, new = before.get(name), after.get(name)
        if name not in after:
            shown.append(f"{name}: {_value(old)} -> (gone)")
        elif name not in before:
            shown.append(f"{name}: {_value(new)}")
        elif old != new:
            shown.append(f"{name}: {_value(old)} -> {_value(new)}")
    return "; ".join(shown)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("TIME", "created_at"),
    ("ACTOR", "actor"),
    ("ACTION", "action"),
    ("TARGET", lambda e: f"{e['target_type']} {e['target_id']}"),
    ("CHANGES", _changes),
    ("REQUEST", "request_id"),
]


@app.command("list")
def list_(
    limit: int | None = typer.Option(None, help="Entries per page (default 50, at most 200)."),
    cursor: str | None = typer.Option(None, help="The next_cursor a previous page gave."),
    as_json: bool = JsonFlag,
) -> None:
    """What operators changed (CLI, admin API, console), newest first."""
    run(
        lambda ctx: service.list_entries(ctx, limit=limit, cursor=cursor),
        as_json=as_json,
        describe=lambda page: listing(page, _COLUMNS),
    )
