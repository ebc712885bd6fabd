"""bytespike usage ..."""

from __future__ import annotations

from typing import Any

import typer

from bytespike.cli.runner import JsonFlag, run, run_raw, usd_text
from bytespike.cli.tables import Column, table
from bytespike.context import Context
from bytespike.usage import reports

app = typer.Typer(help="Usage reports.", no_args_is_help=True)

FORMATS = ("table", "json", "csv")
_FIGURES: list[Column] = [
    ("requests", "requests"),
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached", "cached_tokens"),
    ("cost_usd", lambda row: usd_text(row["cost_usd"])),
    ("refused", "refused"),
]


@app.command("report")
def report(
    by: str = typer.Option(..., "--by", help="Group by user, key, model, day or org."),
    org: str | None = typer.Option(None, "--org", help="Only this org's wallet (name or id)."),
    user: str | None = typer.Option(None, "--user", help="Only this user's keys."),
    key: str | None = typer.Option(None, "--key", help="Only this key (its id)."),
    model: str | None = typer.Option(None, "--model", help="Only this model."),
    since: str | None = typer.Option(
        None, "--since", help="First UTC day, YYYY-MM-DD (default: 29 days before --until)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Last UTC day, YYYY-MM-DD (default: today)."
    ),
    fmt: str = typer.Option("table", "--format", help="table, json or csv (--json: json)."),
    as_json: bool = JsonFlag,
) -> None:
    """Requests, tokens, cost and refused calls over whole UTC days, from the daily rollups,
    most spent first (by day: oldest first)."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")

    async def build(ctx: Context) -> reports.Report:
        return await reports.build(
            ctx, by=by, org=org, user=user, key=key, model=model, since=since, until=until
        )

    async def as_csv(ctx: Context) -> str:
        return reports.as_csv(await build(ctx))

    async def as_dict(ctx: Context) -> dict[str, Any]:
        return reports.as_json(await build(ctx))

    if fmt == "csv" and not as_json:
        run_raw(as_csv)
    else:
        run(as_dict, as_json=as_json or fmt == "json", describe=describe)


def describe(result: dict[str, Any]) -> str:
    """The report as a table, a totals line under it."""
    by = result["by"]
    columns: list[Column] = [(name, name) for name in reports.COLUMNS[by]] + _FIGURES
    totals = {reports.COLUMNS[by][0]: "total", **result["totals"]}
    heading = f"usage by {by}, {result['since']} to {result['until']} (UTC)"
    if not result["data"]:
        return f"{heading}\n(none)"
    return f"{heading}\n{table([*result['data'], totals], columns)}"
