"""bytespike db ..."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from bytespike.cli.runner import JsonFlag, fail, load_settings
from bytespike.db import backup as backups
from bytespike.db import migrate

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending migrations to BYTESPIKE_DATABASE_URL."""
    settings = load_settings()
    migrate.upgrade(settings.database_url)
    typer.echo("database schema is up to date")


@app.command("backup")
def backup(
    path: Path = typer.Argument(..., help="The backup file to write (replaced if it exists)."),
    as_json: bool = JsonFlag,
) -> None:
    """Copy the SQLite database, while the gateway serves, to PATH (and its key file to
    PATH.key). Consistent as of one moment; never migrates. On PostgreSQL: use pg_dump."""
    settings = load_settings()
    try:
        made = backups.sqlite(settings.database_url, path)
    except (backups.BackupRefused, OSError) as exc:
        fail(str(exc))
    key = str(made.key_file) if made.key_file else None
    if as_json:
        result = {"database": str(made.database), "bytes": made.size_bytes, "key_file": key}
        typer.echo(orjson.dumps(result).decode())
        return
    typer.echo(f"backed up the database to {made.database} ({made.size_bytes} bytes)")
    if key is not None:
        typer.echo(f"and its key file to {key}: keep the two together, and private")
    elif settings.secret_key:
        typer.echo("the webhook secret key is BYTESPIKE_SECRET_KEY: keep it with the backup")
