"""bytespike credits ..."""

from __future__ import annotations

from typing import Any

import typer

from bytespike.billing import service
from bytespike.cli.runner import JsonFlag, one_owner, run, usd_option, usd_text

app = typer.Typer(help="Add money to wallets.", no_args_is_help=True)


@app.command("topup")
def topup(
    usd: str = typer.Option(..., help="Amount in USD, e.g. 250 or 19.99."),
    user: str | None = typer.Option(None, "--user", help="Username of an individual user."),
    org: str | None = typer.Option(None, "--org", help="Org id or name, or id:N / name:TEXT."),
    reference: str | None = typer.Option(
        None, help="Payment reference; a reference already used is not applied again."
    ),
    as_json: bool = JsonFlag,
) -> None:
    """Top up a user's or an org's wallet."""
    one_owner(user, org)
    amount = usd_option(usd, "--usd")

    def describe(t: dict[str, Any]) -> str:
        verb = "topped up" if t["applied"] else "already applied (same reference), not added:"
        available = usd_text(t["balance"]["available_usd"])
        return f"{verb} {usd_text(t['amount_usd'])} USD; available now {available} USD"

    run(
        lambda ctx: service.top_up(ctx, amount=amount, username=user, org=org, reference=reference),
        as_json=as_json,
        describe=describe,
    )
