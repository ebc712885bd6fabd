"""bytespike wallets ..."""

from __future__ import annotations

from typing import Any

import typer

from bytespike.billing import service
from bytespike.cli.runner import JsonFlag, one_owner, run, usd_text
from bytespike.cli.tables import fields

app = typer.Typer(help="Show wallets.", no_args_is_help=True)

_MONEY = [
    "available_usd",
    "held_usd",
    "lifetime_topup_usd",
    "lifetime_spent_usd",
    "lifetime_adjusted_usd",
    "low_balance_threshold_usd",
]


@app.command("show")
def show(
    user: str | None = typer.Option(None, "--user", help="An individual user's username or id."),
    org: str | None = typer.Option(None, "--org", help="Org id or name, or id:N / name:TEXT."),
    as_json: bool = JsonFlag,
) -> None:
    """A user's or an org's wallet: balance, money held by calls in flight, lifetime figures."""
    one_owner(user, org)
    run(
        lambda ctx: service.show_wallet(ctx, username=user, org=org),
        as_json=as_json,
        describe=_described,
    )


def _described(w: dict[str, Any]) -> str:
    owner = w["owner"]
    shown = {
        "id": w["id"],
        "owner": f"{owner['type']} {owner['name']} (id {owner['id']})",
        **{name.removesuffix("_usd"): f"{usd_text(w[name])} USD" for name in _MONEY},
        "low_balance_flagged": w["low_balance_flagged"],
        "created_at": w["created_at"],
    }
    return fields(shown)
