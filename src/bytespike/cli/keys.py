"""bytespike keys ..."""

from __future__ import annotations

import typer

from bytespike.cli.runner import JsonFlag, run, usd_option
from bytespike.db.metadata import stored_id
from bytespike.keys import service

app = typer.Typer(help="Mint and revoke API keys.", no_args_is_help=True)


def parse_model(spec: str) -> tuple[str, int | None]:
    """`ID` or `ID=CAP_USD`."""
    model, sep, cap = spec.partition("=")
    if not model or (sep and not cap):
        raise typer.BadParameter(f"expected ID or ID=CAP_USD, got {spec!r}")
    return model, usd_option(cap, f"cap of {model}") if sep else None


@app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="Username of the key's holder."),
    org: str | None = typer.Option(
        None, "--org", help="Org the key belongs to: id or name, or id:N / name:TEXT."
    ),
    model: list[str] = typer.Option(
        [], "--model", help="ID or ID=CAP_USD; repeat. Default: every catalog model, uncapped."
    ),
    rate_limit: int | None = typer.Option(None, help="Requests per minute (default 600)."),
    quota_reset: str | None = typer.Option(
        None, help="Reset per-model quotas daily, weekly or monthly (UTC); default: never."
    ),
    name: str | None = typer.Option(None, help="A label for the key."),
    as_json: bool = JsonFlag,
) -> None:
    """Create an API key. The secret is printed this once and never stored."""
    roster = [parse_model(spec) for spec in model] or None
    run(
        lambda ctx: service.create(
            ctx,
            username=user,
            org=org,
            models=roster,
            rate_limit=rate_limit,
            quota_reset=quota_reset,
            name=name,
        ),
        as_json=as_json,
        describe=lambda k: (
            f"key {k['id']} created; copy it now, it is not shown again:\n{k['key']}"
        ),
    )


@app.command("revoke")
def revoke(
    key_id: int = typer.Argument(..., help="The key's id."), as_json: bool = JsonFlag
) -> None:
    """Revoke a key; every running server refuses it from the next request on."""
    if stored_id(str(key_id)) is None:  # no key has it, and the database would refuse it
        typer.echo(f"error: no key {key_id}", err=True)
        raise typer.Exit(1)
    run(
        lambda ctx: service.revoke(ctx, key_id),
        as_json=as_json,
        describe=lambda k: f"key {k['id']} revoked",
    )
