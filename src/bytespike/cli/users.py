"""bytespike users ..."""

from __future__ import annotations

import sys
from typing import Any

import typer

from bytespike.accounts import service
from bytespike.cli.runner import JsonFlag, run, usd_text
from bytespike.cli.tables import fields, listing, table

app = typer.Typer(help="Manage users.", no_args_is_help=True)
UserArgument = typer.Argument(..., help="Username or id, or id:N / name:USERNAME.")
LimitOption = typer.Option(None, "--limit", help="Rows per page (default 50, at most 200).")
CursorOption = typer.Option(None, "--cursor", help="The next_cursor a previous page gave.")

_COLUMNS = [
    ("ID", "id"),
    ("USERNAME", "username"),
    ("EMAIL", "email"),
    ("TIER", "tier"),
    ("STATUS", "status"),
    ("CREATED", "created_at"),
]


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


@app.command("list")
def list_(
    org: str | None = typer.Option(None, "--org", help="Only this org's members (id or name)."),
    limit: int | None = LimitOption,
    cursor: str | None = CursorOption,
    as_json: bool = JsonFlag,
) -> None:
    """List users by id, a page at a time."""
    columns = _COLUMNS if org is None else [*_COLUMNS[:2], ("ROLE", "role"), *_COLUMNS[2:]]
    run(
        lambda ctx: service.list_users(ctx, org=org, limit=limit, cursor=cursor),
        as_json=as_json,
        describe=lambda page: listing(page, columns),
    )


@app.command("show")
def show(user: str = UserArgument, as_json: bool = JsonFlag) -> None:
    """A user: status, orgs and roles, own wallet, keys."""
    run(lambda ctx: service.show_user(ctx, user), as_json=as_json, describe=_described)


def _described(u: dict[str, Any]) -> str:
    keys = u["keys"]
    lines = [
        fields(u, ["id", "username", "email", "tier", "status", "suspended_at", "created_at"]),
        f"keys: {keys['active']} active, {keys['revoked']} revoked, {keys['expired']} expired",
        f"wallet: {_wallet_line(u['wallet'])}",
        "memberships:",
        _indented(table(u["memberships"], [("ORG", "id"), ("NAME", "name"), ("ROLE", "role")])),
    ]
    return "\n".join(lines)


def _wallet_line(wallet: dict[str, Any] | None) -> str:
    if wallet is None:
        return "- (enterprise: billed to their org)"
    return (
        f"{usd_text(wallet['available_usd'])} USD available, "
        f"{usd_text(wallet['held_usd'])} USD held (wallet {wallet['id']})"
    )


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


@app.command("update")
def update(
    user: str = UserArgument,
    email: str | None = typer.Option(None, "--email", help="A corrected email address."),
    tier: str | None = typer.Option(
        None, "--tier", help="individual or enterprise (enterprise needs an org to bill)."
    ),
    as_json: bool = JsonFlag,
) -> None:
    """Correct a user's email, or move them to the other tier."""
    run(
        lambda ctx: service.update_user(ctx, user, email=email, tier=tier),
        as_json=as_json,
        describe=lambda u: f"user {u['username']} (id {u['id']}): {u['email']}, {u['tier']}",
    )


@app.command("suspend")
def suspend(user: str = UserArgument, as_json: bool = JsonFlag) -> None:
    """Suspend a user: every key of theirs gets 403 from the next request on."""
    run(
        lambda ctx: service.set_suspended(ctx, user, suspended=True),
        as_json=as_json,
        describe=lambda u: (
            f"user {u['username']} was already suspended (since {u['suspended_at']})"
            if u["already_suspended"]
            else f"suspended user {u['username']}: their keys are refused from now on"
        ),
    )


@app.command("unsuspend")
def unsuspend(user: str = UserArgument, as_json: bool = JsonFlag) -> None:
    """Lift a suspension: the user's keys work again from the next request on."""
    run(
        lambda ctx: service.set_suspended(ctx, user, suspended=False),
        as_json=as_json,
        describe=lambda u: (
            f"user {u['username']} was already active"
            if u["already_active"]
            else f"unsuspended user {u['username']}: their keys work again"
        ),
    )


# --- the console's credentials (bytespike/console/credentials.py) --------------------------


@app.command("set-password")
def set_password(
    user: str = UserArgument,
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (one line)."
    ),
    as_json: bool = JsonFlag,
) -> None:
    """Set a user's console password (Argon2id); their console sessions end. Without
    --password-stdin it is asked for twice, unechoed."""
    from bytespike.console import credentials

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    run(
        lambda ctx: credentials.set_password(ctx, user, password),
        as_json=as_json,
        describe=lambda u: (
            f"password set for {u['username']}; {u['sessions_ended']} console session(s) ended"
        ),
    )


@app.command("invite")
def invite(user: str = UserArgument, as_json: bool = JsonFlag) -> None:
    """Print a one-time console link, valid 7 days, where the user chooses a password
    (its base is BYTESPIKE_PUBLIC_URL). A new invite replaces the user's unused ones."""
    from bytespike.console import credentials

    run(
        lambda ctx: credentials.invite(ctx, user),
        as_json=as_json,
        describe=lambda i: f"{i['url']}\n(for {i['username']}; valid until {i['expires_at']})",
    )


@app.command("grant-operator")
def grant_operator(user: str = UserArgument, as_json: bool = JsonFlag) -> None:
    """Let a user into the console's admin area."""
    from bytespike.console import credentials

    run(
        lambda ctx: credentials.set_operator(ctx, user, operator=True),
        as_json=as_json,
        describe=lambda u: (
            f"{u['username']} is an operator" + ("" if u["changed"] else " (already)")
        ),
    )


@app.command("revoke-operator")
def revoke_operator(user: str = UserArgument, as_json: bool = JsonFlag) -> None:
    """Take a user out of the console's admin area."""
    from bytespike.console import credentials

    run(
        lambda ctx: credentials.set_operator(ctx, user, operator=False),
        as_json=as_json,
        describe=lambda u: (
            f"{u['username']} is not an operator" + ("" if u["changed"] else " (already)")
        ),
    )
