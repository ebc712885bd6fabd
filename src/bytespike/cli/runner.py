"""Runs one CLI use case: settings from the environment, a Context, the coroutine, the output.

Every command prints a readable line, or with --json exactly one JSON object. Errors go to
stderr with exit code 1 (2 for usage errors, as Typer does). A configuration mistake (a bad
setting, catalog or database) is one `error:` line naming what to fix, never a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import orjson
import sqlalchemy as sa
import typer
from pydantic import ValidationError

from bytespike import catalog
from bytespike.audit import log as audit
from bytespike.catalog import CatalogError
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.db.engine import Database
from bytespike.errors import BytespikeError
from bytespike.money import MICROS_PER_USD, MoneyError, parse_usd, to_usd_text
from bytespike.settings import Settings

JsonFlag = typer.Option(False, "--json", help="Print the result as one JSON object.")
T = TypeVar("T")


class ConfigurationError(Exception):
    """The process cannot run as configured; the message says what to fix."""


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        fail(f"invalid configuration: {_one_line(exc)}")


def _one_line(exc: ValidationError) -> str:
    """Pydantic's report spans lines and quotes inputs (secrets among them): keep the
    variable and the reason only."""
    problems = []
    for error in exc.errors():
        field = "_".join(str(part) for part in error["loc"]).upper()
        reason = error["msg"].removeprefix("Value error, ").replace("\n", " ")
        problems.append(f"BYTESPIKE_{field}: {reason}")
    return "; ".join(problems)


def start_process() -> Settings:
    """Shared start of the long-running commands (serve, worker): logs, the secret key, the
    catalog and the schema (migrated here on the embedded default); a configuration error
    exits with its reason before anything listens."""
    from bytespike import logs, traces
    from bytespike.webhooks.signing import SecretBox, SecretKeyMissing

    settings = load_settings()
    logs.configure(settings.log_level)
    try:
        # Read here as well as by the server, so a bad file is one line, not a traceback
        # from inside the app factory; first, as it has no side effect (the key may be made).
        catalog.load(settings.catalog)
        SecretBox.from_settings(settings)
        traces.check(settings)  # configured, but without OpenTelemetry's SDK installed
    except (CatalogError, SecretKeyMissing, traces.TracingUnavailable) as exc:
        fail(str(exc))
    if settings.is_sqlite:
        migrate.ensure_current_sqlite(settings.database_url)
    else:
        try:
            asyncio.run(_check_schema_alone(settings.database_url))
        except ConfigurationError as exc:
            fail(str(exc))
    return settings


async def _check_schema_alone(url: str) -> None:
    db = Database(url)  # its own: the server's engine belongs to the server's event loop
    try:
        await require_current_schema(db)
    finally:
        await db.close()


async def require_current_schema(db: Database) -> None:
    """migrate.require_current, its refusals and an outage as one-line configuration errors."""
    try:
        await migrate.require_current(db)
    except migrate.SchemaOutOfDate as exc:
        raise ConfigurationError(str(exc)) from exc
    except (OSError, sa.exc.DBAPIError, BytespikeError) as exc:  # an outage is reported so
        raise ConfigurationError(
            f"cannot reach the database ({_driver_reason(exc)}): check BYTESPIKE_DATABASE_URL"
        ) from exc


def _driver_reason(exc: BaseException) -> str:
    """The driver's own words (the host or database it could not use), from under the
    wrappers: SQLAlchemy's, and the outage error the database layer raises."""
    cause: BaseException = exc
    while isinstance(cause, BytespikeError) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, sa.exc.DBAPIError) and cause.orig is not None:
        cause = cause.orig
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def run(
    use_case: Callable[[Context], Awaitable[dict[str, Any]]],
    *,
    as_json: bool,
    describe: Callable[[dict[str, Any]], str],
) -> None:
    result = _result(use_case)
    if as_json:
        typer.echo(orjson.dumps(result).decode())
    else:
        typer.echo(describe(result))


def run_raw(use_case: Callable[[Context], Awaitable[str]]) -> None:
    """`run` for a command whose result is its output already (a CSV export): printed as
    it is, without a newline added."""
    typer.echo(_result(use_case), nl=False)


def _result(use_case: Callable[[Context], Awaitable[T]]) -> T:
    settings = load_settings()
    if settings.is_sqlite:
        # The embedded default sets itself up: no separate step before the first command.
        migrate.ensure_current_sqlite(settings.database_url)
    try:
        with audit.acting(cli_actor()):
            return asyncio.run(_with_context(settings, use_case))
    except (BytespikeError, CatalogError, ConfigurationError) as exc:
        fail(exc.message if isinstance(exc, BytespikeError) else str(exc))


def cli_actor() -> str:
    """The audit log's name for whoever runs the CLI: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "cli"


async def _with_context(settings: Settings, use_case: Callable[[Context], Awaitable[T]]) -> T:
    ctx = Context.build(settings)
    try:
        if not settings.is_sqlite:
            await require_current_schema(ctx.db)
        return await use_case(ctx)
    finally:
        await ctx.db.close()


def usd_option(text: str, what: str) -> int:
    """Parse a USD option; a bad amount is an error like any refused input (exit 1), so
    `--usd -5` fails the same way as `--usd 0`, which the service refuses."""
    try:
        return parse_usd(text)
    except MoneyError as exc:
        fail(f"{what}: {exc}")


def usd_text(amount: float) -> str:
    """A JSON USD number as people read it: 250.00, 0.000123. It renders what was already
    committed, so unlike `parse_usd` it has no bound to refuse: a refusal here would be a
    traceback after the change, inviting a retry."""
    return to_usd_text(round(Decimal(repr(amount)) * MICROS_PER_USD))


def one_owner(user: str | None, org: str | None) -> None:
    if (user is None) == (org is None):
        raise typer.BadParameter("give exactly one of --user or --org")
