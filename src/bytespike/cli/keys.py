"""bytespike keys ..."""

from __future__ import annotations

from typing import Any

import typer

from bytespike.cli.runner import JsonFlag, fail, run, usd_option, usd_text
from bytespike.cli.tables import Column, fields, listing
from bytespike.db.metadata import stored_id
from bytespike.keys import service

app = typer.Typer(help="Mint, list, change, roll and revoke API keys.", no_args_is_help=True)


def parse_model(spec: str) -> tuple[str, int | None]:
    """`ID` or `ID=CAP_USD`."""
    model, sep, cap = spec.partition("=")
    if not model or (sep and not cap):
        raise typer.BadParameter(f"expected ID or ID=CAP_USD, got {spec!r}")
    return model, usd_option(cap, f"cap of {model}") if sep else None


@app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="Username of the key's holder."),
    org: str | None = typer.Option(
        None, "--org", help="Org the key belongs to: id or name, or id:N / name:TEXT."
    ),
    model: list[str] = typer.Option(
        [], "--model", help="ID or ID=CAP_USD; repeat. Default: every catalog model, uncapped."
    ),
    rate_limit: int | None = typer.Option(None, help="Requests per minute (default 600)."),
    quota_reset: str | None = typer.Option(
        None, help="Reset per-model quotas daily, weekly or monthly (UTC); default: never."
    ),
    name: str | None = typer.Option(None, help="A label for the key."),
    as_json: bool = JsonFlag,
) -> None:
    """Create an API key. The secret is printed this once and never stored."""
    roster = [parse_model(spec) for spec in model] or None
    run(
        lambda ctx: service.create(
            ctx,
            username=user,
            org=org,
            models=roster,
            rate_limit=rate_limit,
            quota_reset=quota_reset,
            name=name,
        ),
        as_json=as_json,
        describe=lambda k: (
            f"key {k['id']} created; copy it now, it is not shown again:\n{k['key']}"
        ),
    )


@app.command("revoke")
def revoke(
    key_id: int = typer.Argument(..., help="The key's id."), as_json: bool = JsonFlag
) -> None:
    """Revoke a key; every running server refuses it from the next request on."""
    if stored_id(str(key_id)) is None:  # no key has it, and the database would refuse it
        typer.echo(f"error: no key {key_id}", err=True)
        raise typer.Exit(1)
    run(
        lambda ctx: service.revoke(ctx, key_id),
        as_json=as_json,
        describe=lambda k: f"key {k['id']} revoked",
    )


KEY_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("NAME", "name"),
    ("PREFIX", "prefix"),
    ("OWNER", "username"),
    ("ORG", "org"),
    ("STATUS", "status"),
    ("CREATED", "created_at"),
    ("LAST USED", "last_used_at"),
    ("MODELS", lambda k: ", ".join(_model_text(m) for m in k["models"])),
    ("RATE/MIN", "rate_limit_per_minute"),
    ("BUDGET", lambda k: _budget_text(k["budget"])),
    ("EXPIRES", "expires_at"),
]


def _model_text(model: dict[str, Any]) -> str:
    if model["quota_cap_usd"] is None:
        return str(model["id"])
    return f"{model['id']} ${usd_text(model['quota_used_usd'])}/${usd_text(model['quota_cap_usd'])}"


def _budget_text(budget: dict[str, Any] | None) -> str | None:
    if budget is None:
        return None
    period = f" {budget['reset']}" if budget["reset"] else ""
    return f"${usd_text(budget['spent_usd'])}/${usd_text(budget['budget_usd'])}{period}"


@app.command("list")
def list_keys(
    user: str | None = typer.Option(None, "--user", help="Only this user's keys (name or id)."),
    org: str | None = typer.Option(None, "--org", help="Only keys created in this org."),
    revoked: bool = typer.Option(False, "--revoked", help="Include revoked keys."),
    limit: int | None = typer.Option(None, "--limit", help="Keys per page (default 50)."),
    cursor: str | None = typer.Option(None, "--cursor", help="next_cursor of the last page."),
    as_json: bool = JsonFlag,
) -> None:
    """List keys: settings, state and spend; never a secret."""
    run(
        lambda ctx: service.list_keys(
            ctx, user=user, org=org, revoked=revoked, limit=limit, cursor=cursor
        ),
        as_json=as_json,
        describe=lambda page: listing(page, KEY_COLUMNS),
    )


KeyId = typer.Argument(..., help="The key's id.")


def _checked_id(key_id: int) -> int:
    if stored_id(str(key_id)) is None:  # no key has it, and the database would refuse it
        fail(f"no key {key_id}")
    return key_id


@app.command("show")
def show(key_id: int = KeyId, as_json: bool = JsonFlag) -> None:
    """One key: settings, state, roster with caps and spend, budget."""
    _checked_id(key_id)
    run(lambda ctx: service.show(ctx, key_id), as_json=as_json, describe=fields)


@app.command("update")
def update(
    key_id: int = KeyId,
    name: str | None = typer.Option(None, "--name", help="A new label ('' clears it)."),
    model: list[str] = typer.Option(
        [], "--model", help="Add a model, or set its cap: ID or ID=CAP_USD; repeat."
    ),
    remove_model: list[str] = typer.Option([], "--remove-model", help="Drop a model; repeat."),
    rate_limit: int | None = typer.Option(None, "--rate-limit", help="Requests per minute."),
    quota_reset: str | None = typer.Option(
        None, "--quota-reset", help="daily, weekly, monthly or none."
    ),
    budget_usd: str | None = typer.Option(
        None, "--budget-usd", help="Total budget over every model in USD, or none."
    ),
    budget_reset: str | None = typer.Option(
        None, "--budget-reset", help="Budget period: daily, weekly, monthly or none (total)."
    ),
    expires_at: str | None = typer.Option(
        None, "--expires-at", help="ISO 8601 time (2026-12-31T23:59:59Z) or none."
    ),
    as_json: bool = JsonFlag,
) -> None:
    """Change a key's settings; every server applies them from its next request on."""
    _checked_id(key_id)
    budget: int | str | None = budget_usd
    if budget_usd is not None and budget_usd != service.CLEAR:
        budget = usd_option(budget_usd, "budget")
    changes = service.KeyChanges(
        name=name,
        models=[parse_model(spec) for spec in model] or None,
        remove_models=remove_model or None,
        rate_limit=rate_limit,
        quota_reset=quota_reset,
        budget=budget,
        budget_reset=budget_reset,
        expires_at=expires_at,
    )
    run(
        lambda ctx: service.update(ctx, key_id, changes),
        as_json=as_json,
        describe=lambda k: f"key {k['id']} updated\n{fields(k)}",
    )


@app.command("roll")
def roll(
    key_id: int = KeyId,
    grace_seconds: int = typer.Option(
        0, "--grace-seconds", help="How long the old secret keeps working (default 0)."
    ),
    as_json: bool = JsonFlag,
) -> None:
    """Issue a new secret for the same key (id, settings and spend history stay)."""
    _checked_id(key_id)
    run(
        lambda ctx: service.roll(ctx, key_id, grace_seconds=grace_seconds),
        as_json=as_json,
        describe=lambda k: (
            f"key {k['id']} rolled; copy the new secret now, it is not shown again:\n{k['key']}"
            + (
                f"\nthe old secret works until {k['previous_valid_until']}"
                if k["previous_valid_until"]
                else "\nthe old secret no longer works"
            )
        ),
    )
