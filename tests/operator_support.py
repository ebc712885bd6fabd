"""One operator command, run through either of its two interfaces: the CLI (the real Typer
app, in-process, with `--json`) or the admin HTTP API. Operator tests take the `operator`
fixture, parametrised over both (and, through `ctx`, over both databases), and give each
command in both of its spellings:

    user = await operator.ok(["users", "show", "ada"], "GET", "/api/v1/admin/users/ada")

`ok` returns the parsed JSON of a success; `fails` the error message of a refusal (exit 1
with one `error:` line; or the API's 4xx, whose status it checks when `status` is given).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import httpx
from typer.testing import CliRunner

from bytespike.cli.main import app as cli_app
from bytespike.context import Context


@dataclass
class Operator:
    interface: str  # "cli" or "api"
    ctx: Context
    client: httpx.AsyncClient
    admin_headers: dict[str, str]

    async def ok(
        self,
        cli: list[str],
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
    ) -> Any:
        if self.interface == "cli":
            code, out, err = await self.run_cli([*cli, "--json"])
            assert code == 0, (cli, out, err)
            assert out.count("\n") == 1, out  # exactly one JSON object
            return json.loads(out)
        response = await self.client.request(
            method, path, json=body, params=params, headers=self.admin_headers
        )
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    async def fails(
        self,
        cli: list[str],
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> str:
        if self.interface == "cli":
            code, out, err = await self.run_cli([*cli, "--json"])
            assert code == 1, (cli, code, out, err)
            assert out == "" and err.startswith("error: "), (out, err)
            assert "Traceback" not in err
            return err.removeprefix("error: ").strip()
        response = await self.client.request(
            method, path, json=body, params=params, headers=self.admin_headers
        )
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        if status is not None:
            assert response.status_code == status, response.text
        message: str = response.json()["error"]["message"]
        return message

    async def run_cli(self, args: list[str]) -> tuple[int, str, str]:
        """`bytespike ARGS` against the test's database; (exit code, stdout, stderr)."""
        return await asyncio.to_thread(cli, self.ctx.settings.database_url, args)


def cli(db_url: str, args: list[str]) -> tuple[int, str, str]:
    env = {name: None for name in os.environ if name.startswith("BYTESPIKE_")}
    env["BYTESPIKE_DATABASE_URL"] = db_url
    result = CliRunner().invoke(cli_app, args, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr
