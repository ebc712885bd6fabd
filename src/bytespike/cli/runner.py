"""Runs one CLI use case: settings from the environment, a Context, the coroutine, the output.

Every command prints a readable line, or with --json exactly one JSON object. Errors go to
stderr with exit code 1 (2 for usage errors, as Typer does).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url

import bytespike.db
from bytespike.catalog import CatalogError
from bytespike.context import Context
from bytespike.errors import BytespikeError
from bytespike.money import MoneyError, parse_usd, to_usd_text
from bytespike.settings import Settings

JsonFlag = typer.Option(False, "--json", help="Print the result as one JSON object.")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(1) from exc


def start_process() -> Settings:
    """Shared start of the long-running commands (serve, worker): logs, the secret key,
    and on the embedded default the schema; a configuration error exits with its reason."""
    from bytespike import logs
    from bytespike.webhooks.signing import SecretBox, SecretKeyMissing

    settings = load_settings()
    logs.configure(settings.log_level)
    try:
        SecretBox.from_settings(settings)
    except SecretKeyMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if settings.is_sqlite:
        from bytespike.db import migrate

        migrate.upgrade(settings.database_url)
    return settings


def run(
    use_case: Callable[[Context], Awaitable[dict[str, Any]]],
    *,
    as_json: bool,
    describe: Callable[[dict[str, Any]], str],
) -> None:
    settings = load_settings()
    if settings.is_sqlite:
        # The embedded default sets itself up: no separate step before the first command.
        ensure_sqlite_schema(settings.database_url)
    try:
        result = asyncio.run(_with_context(settings, use_case))
    except (BytespikeError, CatalogError) as exc:
        message = exc.message if isinstance(exc, BytespikeError) else str(exc)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(orjson.dumps(result).decode())
    else:
        typer.echo(describe(result))


async def _with_context(
    settings: Settings, use_case: Callable[[Context], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    ctx = Context.build(settings)
    try:
        return await use_case(ctx)
    finally:
        await ctx.db.close()


def ensure_sqlite_schema(url: str) -> None:
    """Migrate the SQLite file to head, skipping Alembic (a quarter of a second to import, on
    every command) when the file already records the head revision. Any doubt: run Alembic."""
    head = _head_revision()
    if head is None or _sqlite_revision(url) != head:
        from bytespike.db import migrate

        migrate.upgrade(url)


_VERSIONS = Path(bytespike.db.__file__).parent / "migrations" / "versions"
_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def _head_revision() -> str | None:
    """The single head of the migration scripts, read from their text; None if unsure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in _VERSIONS.glob("*.py"):
        for name, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            ids = _QUOTED.findall(value)
            (parents if name == "down_revision" else revisions).update(ids)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _sqlite_revision(url: str) -> str | None:
    path = make_url(url).database
    if not path or path == ":memory:" or not Path(path).exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def usd_option(text: str, what: str) -> int:
    """Parse a USD option; a bad amount is an error like any refused input (exit 1), so
    `--usd -5` fails the same way as `--usd 0`, which the service refuses."""
    try:
        return parse_usd(text)
    except MoneyError as exc:
        typer.echo(f"error: {what}: {exc}", err=True)
        raise typer.Exit(1) from exc


def usd_text(amount: float) -> str:
    """A JSON USD number as people read it: 250.00, 0.000123."""
    return to_usd_text(parse_usd(amount))


def one_owner(user: str | None, org: str | None) -> None:
    if (user is None) == (org is None):
        raise typer.BadParameter("give exactly one of --user or --org")
