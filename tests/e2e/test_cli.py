"""The real `bytespike` console script, run as an operator runs it, on SQLite and PostgreSQL.

Each call is a new process (about a second), so each test drives a whole scenario and checks
the effects through the account endpoint a key holder calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from bytespike.billing import wallets
from bytespike.billing.service import owner_wallet
from bytespike.context import Context
from bytespike.money import MAX_BALANCE_MICROS, to_usd_number
from bytespike.orgs import repo as orgs_repo
from bytespike.settings import Settings

BYTESPIKE = Path(sys.executable).with_name("bytespike")
ACCOUNT = "/api/v1/me/account"


def run_cli(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    env["BYTESPIKE_DATABASE_URL"] = db_url
    return subprocess.run(
        [str(BYTESPIKE), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Cli:
    def __init__(self, db_url: str, cwd: Path) -> None:
        self.db_url = db_url
        self.cwd = cwd

    def ok(self, *args: str) -> str:
        result = run_cli(self.db_url, self.cwd, *args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str) -> dict[str, Any]:
        """With --json: exactly one JSON object on stdout, carrying its `id`."""
        out = self.ok(*args, "--json")
        assert out.endswith("\n") and out.count("\n") == 1, out
        obj = json.loads(out)
        assert isinstance(obj, dict)
        assert isinstance(obj["id"], int), obj
        return obj

    def fails(self, *args: str) -> str:
        """A refused command: exit code 1, nothing on stdout, one `error:` line on stderr."""
        result = run_cli(self.db_url, self.cwd, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr
        return result.stderr


async def account(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.get(ACCOUNT, headers={"Authorization": f"Bearer {key}"})


async def test_every_command_with_json(
    db_url: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    cli = Cli(db_url, tmp_path)

    assert "up to date" in cli.ok("db", "upgrade")
    ada = cli.json("users", "create", "--username", "ada", "--email", "ada@dosia.ai")
    bob = cli.json(
        "users", "create", "--username", "bob", "--email", "bob@dosia.ai", "--tier", "enterprise"
    )
    org = cli.json("orgs", "create", "--name", "Dosia AI")
    ada_member = cli.json(
        "orgs", "add-member", "--org", "Dosia AI", "--user", "ada", "--role", "admin"
    )
    bob_member = cli.json(
        "orgs", "add-member", "--org", str(org["id"]), "--user", "bob", "--role", "member"
    )
    paid = cli.json("credits", "topup", "--user", "ada", "--usd", "250", "--reference", "pay-1")
    retried = cli.json("credits", "topup", "--user", "ada", "--usd", "250", "--reference", "pay-1")
    org_paid = cli.json("credits", "topup", "--org", str(org["id"]), "--usd", "100")
    threshold = cli.json("notifications", "set", "--user", "ada", "--threshold-usd", "7.5")
    key = cli.json(
        "keys", "create", "--user", "ada", "--org", "Dosia AI",
        "--model", "gemini-3-1-pro", "--model", "gpt-5-4=50",
        "--rate-limit", "3", "--quota-reset", "weekly", "--name", "ci",
    )  # fmt: skip
    bob_key = cli.json("keys", "create", "--user", "bob")

    assert (ada["username"], ada["email"], ada["tier"]) == ("ada", "ada@dosia.ai", "individual")
    assert ada["created_at"].endswith("Z")
    assert (bob["tier"], bob["id"]) == ("enterprise", ada["id"] + 1)
    assert (org["name"], org["paused"]) == ("Dosia AI", False)
    assert (ada_member["id"], ada_member["username"], ada_member["role"]) == (
        org["id"],
        "ada",
        "admin",
    )
    assert (bob_member["id"], bob_member["role"]) == (org["id"], "member")
    assert (paid["applied"], paid["amount_usd"], paid["reference"]) == (True, 250.0, "pay-1")
    assert (retried["applied"], retried["id"]) == (False, paid["id"])
    assert retried["balance"]["available_usd"] == 250.0
    assert org_paid["balance"]["available_usd"] == 100.0
    assert threshold["id"] == threshold["wallet_id"]
    assert threshold["low_balance_threshold_usd"] == 7.5
    assert key["key"].startswith("bsk-") and len(key["key"]) == 47
    assert (key["org_id"], key["rate_limit_per_minute"], key["quota_reset"]) == (
        org["id"],
        3,
        "weekly",
    )
    assert key["models"] == [
        {"id": "gpt-5-4", "quota_cap_usd": 50.0},
        {"id": "gemini-3-1-pro", "quota_cap_usd": None},
    ]

    ada_view = await account(client, key["key"])
    assert ada_view.status_code == 200, ada_view.text
    assert ada_view.headers["x-ratelimit-limit-requests"] == "3"
    assert ada_view.json() == {
        "user": ada,
        "balance": {
            "available_usd": 250.0,
            "lifetime_topup_usd": 250.0,  # the retried reference was not applied again
            "lifetime_spent_usd": 0.0,
            "low_balance_threshold_usd": 7.5,
            "low_balance_flagged": False,
        },
        "allowed_models": [
            {"id": "gpt-5-4", "quota_used_usd": 0.0, "quota_cap_usd": 50.0},
            {"id": "gemini-3-1-pro", "quota_used_usd": 0.0, "quota_cap_usd": None},
        ],
        "org": {"id": org["id"], "name": "Dosia AI", "role": "admin"},
    }
    bob_view = (await account(client, bob_key["key"])).json()
    assert bob_view["balance"]["available_usd"] == 100.0  # enterprise: the org's wallet
    assert bob_view["org"] == {"id": org["id"], "name": "Dosia AI", "role": "member"}

    paused = cli.json("orgs", "pause", "--org", str(org["id"]))
    assert (paused["id"], paused["paused"]) == (org["id"], True)
    assert (await account(client, key["key"])).status_code == 403
    resumed = cli.json("orgs", "resume", "--org", "Dosia AI")
    assert (resumed["id"], resumed["paused"]) == (org["id"], False)
    assert (await account(client, key["key"])).status_code == 200

    revoked = cli.json("keys", "revoke", str(key["id"]))
    assert revoked == {"id": key["id"], "revoked": True, "already_revoked": False}
    assert (await account(client, key["key"])).status_code == 401
    assert (await account(client, bob_key["key"])).status_code == 200


async def test_human_output_errors_and_auto_migration_on_a_fresh_sqlite_file(
    tmp_path: Path,
) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'fresh' / 'bytespike.db'}", tmp_path)

    # No `db upgrade` first: the embedded default migrates itself.
    assert cli.ok("users", "create", "--username", "ada", "--email", "ada@dosia.ai") == (
        "created user ada (id 1, individual)\n"
    )
    assert "taken" in cli.fails("users", "create", "--username", "ada", "--email", "a@b.co")
    assert "tier" in cli.fails(
        "users", "create", "--username", "x", "--email", "x@b.co", "--tier", "vip"
    )
    assert cli.ok("orgs", "create", "--name", "Dosia AI") == "created org Dosia AI (id 1)\n"
    assert "exists" in cli.fails("orgs", "create", "--name", "Dosia AI")
    assert cli.ok("orgs", "add-member", "--org", "1", "--user", "ada", "--role", "admin") == (
        "ada is admin of Dosia AI\n"
    )
    assert "role" in cli.fails(
        "orgs", "add-member", "--org", "1", "--user", "ada", "--role", "boss"
    )

    topped = cli.ok("credits", "topup", "--user", "ada", "--usd", "19.99", "--reference", "r-1")
    again = cli.ok("credits", "topup", "--user", "ada", "--usd", "19.99", "--reference", "r-1")
    assert topped.startswith("topped up 19.99 USD") and "19.99" in topped
    assert again.startswith("already applied")
    assert "negative" in cli.fails("credits", "topup", "--user", "ada", "--usd", "-5")
    assert "6 decimal" in cli.fails("credits", "topup", "--user", "ada", "--usd", "0.0000001")
    assert "no user 'nobody'" in cli.fails("credits", "topup", "--user", "nobody", "--usd", "5")
    assert "reference" in cli.fails(
        "credits", "topup", "--user", "ada", "--usd", "20", "--reference", "r-1"
    )
    assert cli.ok("notifications", "set", "--org", "Dosia AI", "--threshold-usd", "2.5") == (
        "low-balance threshold is 2.50 USD\n"
    )

    created = cli.ok("keys", "create", "--user", "ada", "--org", "Dosia AI").splitlines()
    assert created[0].startswith("key 1 created")
    secret = created[1]
    assert secret.startswith("bsk-") and len(secret) == 47
    assert "no user 'nobody'" in cli.fails("keys", "create", "--user", "nobody")
    assert "unknown model" in cli.fails("keys", "create", "--user", "ada", "--model", "gpt-9")

    assert cli.ok("orgs", "pause", "--org", "Dosia AI") == "paused org Dosia AI\n"
    assert cli.ok("orgs", "resume", "--org", "1") == "resumed org Dosia AI\n"
    assert cli.ok("keys", "revoke", "1") == "key 1 revoked\n"
    assert "no key 999" in cli.fails("keys", "revoke", "999")
    assert cli.ok("db", "upgrade") == "database schema is up to date\n"

    # What the commands did to the wallets.
    ctx = Context.build(Settings(database_url=cli.db_url))
    try:
        async with ctx.db.read() as conn:
            ada_wallet = await wallets.view(conn, await owner_wallet(conn, username="ada"))
            org_wallet = await wallets.view(conn, await owner_wallet(conn, org="Dosia AI"))
    finally:
        await ctx.db.close()
    assert (ada_wallet.available, ada_wallet.topped_up) == (19_990_000, 19_990_000)
    assert org_wallet.threshold == 2_500_000


def test_usage_errors_exit_2_and_say_how_to_use(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'bytespike.db'}", tmp_path)

    both = run_cli(
        cli.db_url, tmp_path, "credits", "topup", "--user", "a", "--org", "b", "--usd", "1"
    )
    missing = run_cli(cli.db_url, tmp_path, "users", "create", "--username", "ada")

    assert both.returncode == 2 and "exactly one of --user or --org" in both.stderr
    assert missing.returncode == 2 and "--email" in missing.stderr
    assert both.stdout == missing.stdout == ""


async def test_a_top_up_past_the_maximum_balance_is_refused_before_anything_is_written(
    db_url: str, tmp_path: Path
) -> None:
    cli = Cli(db_url, tmp_path)
    cli.ok("users", "create", "--username", "ada", "--email", "ada@dosia.ai")
    cli.ok("credits", "topup", "--user", "ada", "--usd", "250")

    too_much = cli.fails("credits", "topup", "--user", "ada", "--usd", "1e9", "--reference", "r")
    # The refused reference was not used up: the top-up that fits can carry it.
    filled = cli.json("credits", "topup", "--user", "ada", "--usd", "999999750", "--reference", "r")
    retried = cli.ok("credits", "topup", "--user", "ada", "--usd", "999999750", "--reference", "r")
    one_micro = cli.fails("credits", "topup", "--user", "ada", "--usd", "0.000001")

    assert too_much.count("\n") == 1, too_much
    assert "maximum balance of 1000000000.00 USD" in too_much
    assert "at most 999999750.00 USD more" in too_much
    assert filled["applied"] is True
    assert filled["balance"]["available_usd"] == to_usd_number(MAX_BALANCE_MICROS)
    assert retried == (
        "already applied (same reference), not added: 999999750.00 USD; "
        "available now 1000000000.00 USD\n"
    )
    assert "at most 0.00 USD more" in one_micro
    ctx = Context.build(Settings(database_url=db_url))
    try:
        async with ctx.db.read() as conn:
            wallet = await wallets.view(conn, await owner_wallet(conn, username="ada"))
    finally:
        await ctx.db.close()
    assert (wallet.available, wallet.topped_up) == (MAX_BALANCE_MICROS, MAX_BALANCE_MICROS)


async def test_an_org_ref_that_could_mean_two_orgs_is_refused_and_prefixes_say_which(
    db_url: str, tmp_path: Path
) -> None:
    cli = Cli(db_url, tmp_path)
    cli.ok("users", "create", "--username", "ada", "--email", "ada@dosia.ai")
    dosia = cli.json("orgs", "create", "--name", "Dosia AI")
    named_one = cli.json("orgs", "create", "--name", "1")  # org 2, named like org 1's id
    assert (dosia["id"], named_one["id"]) == (1, 2)

    paused = cli.fails("orgs", "pause", "--org", "1")
    topped = cli.fails("credits", "topup", "--org", "1", "--usd", "5")
    key = cli.fails("keys", "create", "--user", "ada", "--org", "1")
    ctx = Context.build(Settings(database_url=db_url))
    try:
        async with ctx.db.read() as conn:
            untouched = [await orgs_repo.by_id(conn, org_id) for org_id in (1, 2)]
            balance = (await wallets.view(conn, await owner_wallet(conn, org="id:1"))).available
    finally:
        await ctx.db.close()

    for refused in (paused, topped, key):
        assert "'Dosia AI'" in refused and "org id 2" in refused, refused
        assert "say id:1 or name:1" in refused, refused
    assert [org.paused if org else None for org in untouched] == [False, False]
    assert balance == 0
    assert cli.json("orgs", "pause", "--org", "name:1")["id"] == 2
    assert cli.json("orgs", "pause", "--org", "id:1")["id"] == 1
    assert cli.json("orgs", "resume", "--org", "2")["id"] == 2  # no org is named 2
    assert cli.json("orgs", "resume", "--org", "Dosia AI")["id"] == 1
    assert cli.json("credits", "topup", "--org", "name:1", "--usd", "5")["wallet_id"] == 3
    assert "whole number" in cli.fails("orgs", "pause", "--org", "id:one")
    assert "no org 'id:9'" in cli.fails("orgs", "pause", "--org", "id:9")
    assert "cannot start with" in cli.fails("orgs", "create", "--name", "id:7")
