"""bytespike users ..."""

from __future__ import annotations

import typer

from bytespike.accounts import service
from bytespike.cli.runner import JsonFlag, run

app = typer.Typer(help="Manage users.", no_args_is_help=True)


@app.command("create")
def create(
    username: str = typer.Option(..., help="Unique login name."),
    email: str = typer.Option(...),
    tier: str = typer.Option(
        "individual", help="individual (own wallet) or enterprise (billed to their org)."
    ),
    as_json: bool = JsonFlag,
) -> None:
    """Create a user (individual users get a wallet of their own)."""
    run(
        lambda ctx: service.create_user(ctx, username=username, email=email, tier=tier),
        as_json=as_json,
        describe=lambda u: f"created user {u['username']} (id {u['id']}, {u['tier']})",
    )
