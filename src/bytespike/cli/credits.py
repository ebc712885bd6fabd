"""bytespike credits ..."""

from __future__ import annotations

from typing import Any

import typer

from bytespike.billing import service
from bytespike.cli.runner import JsonFlag, fail, one_owner, run, usd_option, usd_text
from bytespike.money import MoneyError, parse_usd

app = typer.Typer(help="Add money to wallets, and correct them.", no_args_is_help=True)


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


@app.command("adjust")
def adjust(
    usd: str = typer.Option(
        ..., help="USD to credit (e.g. 10) or, negative, to debit (e.g. -2.50 or --usd=-2.50)."
    ),
    reason: str = typer.Option(..., help="Why: kept with the ledger entry and in the audit log."),
    user: str | None = typer.Option(None, "--user", help="Username of an individual user."),
    org: str | None = typer.Option(None, "--org", help="Org id or name, or id:N / name:TEXT."),
    reference: str | None = typer.Option(
        None,
        help="A reference of yours (a ticket id); a reference already used is not applied again.",
    ),
    as_json: bool = JsonFlag,
) -> None:
    """Correct a wallet's available balance: a credit, or a debit (never below zero)."""
    one_owner(user, org)
    try:
        amount = parse_usd(usd, allow_negative=True)
    except MoneyError as exc:
        fail(f"--usd: {exc}")

    def describe(a: dict[str, Any]) -> str:
        moved = a["amount_usd"]
        what = f"{'credited' if moved > 0 else 'debited'} {usd_text(abs(moved))} USD"
        if not a["applied"]:
            what = f"already applied (same reference), not applied again: {what}"
        available = usd_text(a["balance"]["available_usd"])
        return f"{what} ({a['reason']}); available now {available} USD"

    run(
        lambda ctx: service.adjust(
            ctx, amount=amount, reason=reason, username=user, org=org, reference=reference
        ),
        as_json=as_json,
        describe=describe,
    )
