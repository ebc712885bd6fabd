"""What the console tests share: people with passwords, signing in through the real form
(its CSRF token included), and reading tokens and payloads back out of pages."""

from __future__ import annotations

import html
import os
import re
from typing import Any

import httpx
from typer.testing import CliRunner

from bytespike.cli.main import app as cli_app
from bytespike.console import credentials
from bytespike.context import Context
from tests.factories import make_user

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PAYLOAD = re.compile(
    r'<script type="application/json" id="account-payload">(.*?)</script>', re.DOTALL
)


async def person(
    ctx: Context, name: str, *, tier: str = "individual", operator: bool = False
) -> dict[str, Any]:
    user = await make_user(ctx, name, tier=tier)
    await credentials.set_password(ctx, name, PASSWORD)
    if operator:
        await credentials.set_operator(ctx, name, operator=True)
    return user


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, page[:2000]
    return html.unescape(found.group(1))


def payload_of(page: str) -> bytes:
    found = _PAYLOAD.search(page)
    assert found, page[:2000]
    return found.group(1).encode()


async def sign_in(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"csrf_token": csrf_of(form.text), "username": login, "password": password},
    )


async def post_form(client: httpx.AsyncClient, path: str, data: dict[str, Any]) -> httpx.Response:
    """POST a console form with the CSRF token of the page it is on."""
    page = await client.get(path.split("#")[0])
    assert page.status_code == 200, page.text[:500]
    return await client.post(path, data={"csrf_token": csrf_of(page.text), **data})


def cli(db_url: str, args: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    env: dict[str, str | None] = {n: None for n in os.environ if n.startswith("BYTESPIKE_")}
    env["BYTESPIKE_DATABASE_URL"] = db_url
    result = CliRunner().invoke(cli_app, args, env=env, input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr
