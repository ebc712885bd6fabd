"""bytespike orgs ..."""

from __future__ import annotations

import typer

from bytespike.cli.runner import JsonFlag, run
from bytespike.orgs import service

app = typer.Typer(help="Manage orgs and their members.", no_args_is_help=True)
OrgOption = typer.Option(..., "--org", help="Org id or name, or id:N / name:TEXT.")


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
    user: str = typer.Option(..., "--user", help="Username."),
    role: str = typer.Option(..., help="owner, admin or member."),
    as_json: bool = JsonFlag,
) -> None:
    """Add a user to an org, or change their role."""
    run(
        lambda ctx: service.add_member(ctx, org=org, username=user, role=role),
        as_json=as_json,
        describe=lambda m: f"{m['username']} is {m['role']} of {m['org']}",
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
