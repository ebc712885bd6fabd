"""bytespike db ..."""

from __future__ import annotations

import typer

from bytespike.cli.runner import load_settings
from bytespike.db import migrate

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending migrations to BYTESPIKE_DATABASE_URL."""
    settings = load_settings()
    migrate.upgrade(settings.database_url)
    typer.echo("database schema is up to date")
