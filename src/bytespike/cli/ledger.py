"""bytespike ledger ..."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from bytespike.billing import service
from bytespike.cli.runner import JsonFlag, one_owner, run, usd_text
from bytespike.cli.tables import Column, listing, table
from bytespike.context import Context

app = typer.Typer(help="Read, verify and correct the ledger.", no_args_is_help=True)


def _delta(name: str) -> Callable[[dict[str, Any]], str | None]:
    """An entry's move in one account: signed, blank when it did not touch it."""

    def shown(entry: dict[str, Any]) -> str | None:
        value = entry[name]
        return None if value == 0 else ("+" if value > 0 else "") + usd_text(value)

    return shown


_ENTRY_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("TIME", "created_at"),
    ("KIND", "kind"),
    ("AVAILABLE", _delta("available_usd")),
    ("HELD", _delta("held_usd")),
    ("SPENT", _delta("spent_usd")),
    ("TOPPED UP", _delta("topped_up_usd")),
    ("ADJUSTED", _delta("adjusted_usd")),
    ("HOLD", "hold_id"),
    ("KEY", "key_id"),
    ("MODEL", "model"),
    ("REFERENCE", "reference"),
    ("MEMO", "memo"),
]


@app.command("entries")
def entries(
    user: str | None = typer.Option(None, "--user", help="An individual user's username or id."),
    org: str | None = typer.Option(None, "--org", help="Org id or name, or id:N / name:TEXT."),
    limit: int | None = typer.Option(None, help="Entries per page (default 50, at most 200)."),
    cursor: str | None = typer.Option(None, help="The next_cursor a previous page gave."),
    as_json: bool = JsonFlag,
) -> None:
    """A wallet's ledger entries, newest first; amounts are what each entry moved (USD)."""
    one_owner(user, org)
    run(
        lambda ctx: service.ledger_entries(ctx, username=user, org=org, limit=limit, cursor=cursor),
        as_json=as_json,
        describe=lambda page: listing(page, _ENTRY_COLUMNS),
    )


@app.command("verify")
def verify(as_json: bool = JsonFlag) -> None:
    """Check every invariant of the books over every wallet: entries balance, balances are
    the sums of their entries, holds match their entries, usage records their settlements.
    Prints what it checked and each problem; exits 1 on any drift."""
    found: dict[str, Any] = {}

    async def check(ctx: Context) -> dict[str, Any]:
        found.update(await service.verify(ctx))
        return found

    run(check, as_json=as_json, describe=_report)
    if not found["ok"]:
        typer.echo(f"error: the books drifted: {_problems(found['problem_count'])}", err=True)
        raise typer.Exit(1)


@app.command("reprice")
def reprice(
    model: str = typer.Option(..., "--model", help="The catalog id of the model to reprice."),
    since: str = typer.Option(..., "--since", help="First UTC day of calls, YYYY-MM-DD."),
    until: str = typer.Option(..., "--until", help="Last UTC day of calls, YYYY-MM-DD."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would move; move nothing."),
    reason: str | None = typer.Option(None, "--reason", help="The corrections' memo."),
    as_json: bool = JsonFlag,
) -> None:
    """Price a model's calls again with the catalog's price book as it is now (fix the
    catalog first), and post the difference to each wallet as one balanced correction: a
    debit where calls were undercharged, a credit where overcharged. Running it again
    corrects nothing twice. Reported per wallet; `ledger verify` stays clean."""
    run(
        lambda ctx: service.reprice(
            ctx, model=model, since=since, until=until, dry_run=dry_run, reason=reason
        ),
        as_json=as_json,
        describe=_repriced,
    )


_CORRECTION_COLUMNS: list[Column] = [
    ("WALLET", "wallet_id"),
    ("CALLS", "calls"),
    (
        "AMOUNT",
        lambda c: None if c["kind"] is None else f"{c['kind']} {usd_text(abs(c['amount_usd']))}",
    ),
    ("STATUS", "status"),
    ("ENTRY", "ledger_entry_id"),
    ("REFERENCE", "reference"),
]


def _repriced(found: dict[str, Any]) -> str:
    what = "would correct" if found["dry_run"] else "corrected"
    head = (
        f"{found['model']}: {found['calls']} calls of {found['since']} to {found['until']} "
        f"priced again; {what} {len(found['wallets'])} wallets"
    )
    if not found["wallets"]:
        return head
    return head + "\n" + table(found["wallets"], _CORRECTION_COLUMNS)


def _report(found: dict[str, Any]) -> str:
    checked = found["checked"]
    lines = [
        f"checked {checked['wallets']} wallets, {checked['entries']} ledger entries, "
        f"{checked['holds']} holds, {checked['usage_records']} usage records"
    ]
    if found["ok"]:
        lines.append("ok: every invariant holds")
        return "\n".join(lines)
    lines.append(f"{_problems(found['problem_count'])}:")
    columns: list[Column] = [
        ("TARGET", lambda p: f"{p['target_type']} {p['target_id']}"),
        ("CHECK", "check"),
        ("PROBLEM", "message"),
    ]
    lines.append(table(found["problems"], columns))
    if (hidden := found["problem_count"] - len(found["problems"])) > 0:
        lines.append(f"({hidden} more not shown)")
    return "\n".join(lines)


def _problems(count: int) -> str:
    return f"{count} problem" if count == 1 else f"{count} problems"
