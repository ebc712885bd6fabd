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
from bytespike.money import MoneyError, parse_usd
from bytespike.settings import Settings

JsonFlag = typer.Option(False, "--json", help="Print the result as one JSON object.")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(1) from exc


def run(
    use_case: Callable[[Context], Awaitable[dict[str, Any]]],
    *,
    as_json: bool,
    describe: Callable[[dict[str, Any]], str],
) -> None:
    settings = load_settings()
    if settings.is_sqlite:
        # The embedded default sets itself up: no separate step before the first command.
        migrate.upgrade(settings.database_url)
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
    try:
        return parse_usd(text)
    except MoneyError as exc:
        raise typer.BadParameter(f"{what}: {exc}") from exc


def one_owner(user: str | None, org: str | None) -> None:
    if (user is None) == (org is None):
        raise typer.BadParameter("give exactly one of --user or --org")
