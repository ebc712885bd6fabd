"""bytespike notifications ..."""

from __future__ import annotations

from typing import Any

import typer

from bytespike.billing import service
from bytespike.cli.runner import JsonFlag, one_owner, run, usd_option
from bytespike.context import Context

app = typer.Typer(help="Low-balance notification settings.", no_args_is_help=True)


@app.command("set")
def set_threshold(
    threshold_usd: str = typer.Option(..., help="Flag the wallet at or below this many USD."),
    user: str | None = typer.Option(None, "--user", help="Username of an individual user."),
    org: str | None = typer.Option(None, "--org", help="Org id or name."),
    as_json: bool = JsonFlag,
) -> None:
    """Set a wallet owner's low-balance threshold."""
    one_owner(user, org)
    threshold = usd_option(threshold_usd, "--threshold-usd")

    async def set_on_wallet(ctx: Context) -> dict[str, Any]:
        wallet = await service.set_threshold(ctx, threshold=threshold, username=user, org=org)
        return {"id": wallet["wallet_id"], **wallet}  # every --json result has its `id`

    run(
        set_on_wallet,
        as_json=as_json,
        describe=lambda w: f"low-balance threshold is {w['low_balance_threshold_usd']} USD",
    )
