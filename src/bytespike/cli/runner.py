"""Runs one CLI use case: settings from the environment, a Context, the coroutine, the output.

Every command prints a readable line, or with --json exactly one JSON object. Errors go to
stderr with exit code 1 (2 for usage errors, as Typer does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import typer
from pydantic import ValidationError

from bytespike.catalog import CatalogError
from bytespike.context import Context
from bytespike.db import migrate
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
        migrate.ensure_current_sqlite(settings.database_url)
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
        migrate.ensure_current_sqlite(settings.database_url)
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
