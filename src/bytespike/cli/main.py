"""The `bytespike` command."""

from __future__ import annotations

import typer

from bytespike.cli import (
    audit,
    credits,
    db,
    keys,
    ledger,
    notifications,
    orgs,
    serve,
    usage,
    users,
    wallets,
    worker,
)

app = typer.Typer(
    help="bytespike: a self-hosted LLM gateway with prepaid accounts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(orgs.app, name="orgs")
app.add_typer(credits.app, name="credits")
app.add_typer(keys.app, name="keys")
app.add_typer(notifications.app, name="notifications")
app.add_typer(wallets.app, name="wallets")
app.add_typer(ledger.app, name="ledger")
app.add_typer(usage.app, name="usage")
app.add_typer(audit.app, name="audit")
