"""bytespike notifications ..."""

from __future__ import annotations

import typer

from bytespike.billing import service
from bytespike.cli.runner import JsonFlag, one_owner, run, usd_option, usd_text

app = typer.Typer(help="Low-balance notification settings.", no_args_is_help=True)


@app.command("set")
def set_threshold(
    threshold_usd: str = typer.Option(..., help="Flag the wallet at or below this many USD."),
    user: str | None = typer.Option(None, "--user", help="Username of an individual user."),
    org: str | None = typer.Option(None, "--org", help="Org id or name, or id:N / name:TEXT."),
    as_json: bool = JsonFlag,
) -> None:
    """Set a wallet owner's low-balance threshold."""
    one_owner(user, org)
    threshold = usd_option(threshold_usd, "--threshold-usd")

    run(
        lambda ctx: service.set_threshold(ctx, threshold=threshold, username=user, org=org),
        as_json=as_json,
        describe=lambda w: (
            f"low-balance threshold is {usd_text(w['low_balance_threshold_usd'])} USD"
        ),
    )
