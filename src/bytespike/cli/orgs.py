"""bytespike orgs ..."""

from __future__ import annotations

from typing import Any

import typer

from bytespike.cli.runner import JsonFlag, run, usd_text
from bytespike.cli.tables import fields, listing, table
from bytespike.orgs import service

app = typer.Typer(help="Manage orgs and their members.", no_args_is_help=True)
OrgOption = typer.Option(..., "--org", help="Org id or name, or id:N / name:TEXT.")
OrgArgument = typer.Argument(..., help="Org id or name, or id:N / name:TEXT.")
UserOption = typer.Option(..., "--user", help="Username or id, or id:N / name:USERNAME.")


@app.command("create")
def create(name: str = typer.Option(...), as_json: bool = JsonFlag) -> None:
    """Create an org, with its wallet."""
    run(
        lambda ctx: service.create(ctx, name=name),
        as_json=as_json,
        describe=lambda o: f"created org {o['name']} (id {o['id']})",
    )


@app.command("add-member")
def add_member(
    org: str = OrgOption,
    user: str = UserOption,
    role: str = typer.Option(..., help="owner, admin or member."),
    as_json: bool = JsonFlag,
) -> None:
    """Add a user to an org, or change their role (the last owner cannot be demoted)."""
    run(
        lambda ctx: service.add_member(ctx, org=org, username=user, role=role),
        as_json=as_json,
        describe=lambda m: f"{m['username']} is {m['role']} of {m['org']}",
    )


@app.command("list")
def list_(
    limit: int | None = typer.Option(
        None, "--limit", help="Rows per page (default 50, at most 200)."
    ),
    cursor: str | None = typer.Option(
        None, "--cursor", help="The next_cursor a previous page gave."
    ),
    as_json: bool = JsonFlag,
) -> None:
    """List orgs by id, a page at a time."""
    columns = [
        ("ID", "id"),
        ("NAME", "name"),
        ("PAUSED", "paused"),
        ("MEMBERS", "members"),
        ("CREATED", "created_at"),
    ]
    run(
        lambda ctx: service.list_orgs(ctx, limit=limit, cursor=cursor),
        as_json=as_json,
        describe=lambda page: listing(page, columns),
    )


@app.command("show")
def show(org: str = OrgArgument, as_json: bool = JsonFlag) -> None:
    """An org: its members with their roles, and its wallet."""
    run(lambda ctx: service.show(ctx, org), as_json=as_json, describe=_described)


def _described(o: dict[str, Any]) -> str:
    w = o["wallet"]
    members = table(
        o["members"],
        [("USER", "id"), ("USERNAME", "username"), ("ROLE", "role"), ("JOINED", "joined_at")],
    )
    return "\n".join(
        [
            fields(o, ["id", "name", "paused", "created_at"]),
            f"wallet {w['id']}: {usd_text(w['available_usd'])} USD available, "
            f"{usd_text(w['held_usd'])} USD held, "
            f"{usd_text(w['lifetime_topup_usd'])} USD topped up, "
            f"{usd_text(w['lifetime_spent_usd'])} USD spent; "
            f"low-balance threshold {usd_text(w['low_balance_threshold_usd'])} USD",
            "members:",
            *(f"  {line}" for line in members.splitlines()),
        ]
    )


@app.command("rename")
def rename(
    org: str = OrgArgument,
    name: str = typer.Option(..., "--name", help="The new name (unique)."),
    as_json: bool = JsonFlag,
) -> None:
    """Rename an org."""
    run(
        lambda ctx: service.rename(ctx, org=org, name=name),
        as_json=as_json,
        describe=lambda o: f"org {o['id']} is named {o['name']}",
    )


@app.command("remove-member")
def remove_member(org: str = OrgOption, user: str = UserOption, as_json: bool = JsonFlag) -> None:
    """Take a user out of an org: their keys created in it stop working (never the last owner)."""
    run(
        lambda ctx: service.remove_member(ctx, org=org, username=user),
        as_json=as_json,
        describe=lambda m: f"removed {m['username']} ({m['role']}) from {m['org']}",
    )


@app.command("pause")
def pause(org: str = OrgOption, as_json: bool = JsonFlag) -> None:
    """Pause an org: keys created in it get 403 from the next request on."""
    run(
        lambda ctx: service.set_paused(ctx, org=org, paused=True),
        as_json=as_json,
        describe=lambda o: f"paused org {o['name']}",
    )


@app.command("resume")
def resume(org: str = OrgOption, as_json: bool = JsonFlag) -> None:
    """Resume a paused org."""
    run(
        lambda ctx: service.set_paused(ctx, org=org, paused=False),
        as_json=as_json,
        describe=lambda o: f"resumed org {o['name']}",
    )
