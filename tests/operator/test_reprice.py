"""`ledger reprice` (POST /api/v1/admin/ledger/reprice): calls made at a wrong price, the
price fixed in the catalog, and exactly the difference posted to each wallet once, however
often it runs, through both interfaces on both databases; `ledger verify` stays clean."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from bytespike import catalog
from bytespike.app import create_app
from bytespike.billing import ledger, service
from bytespike.cli.main import app as cli_app
from bytespike.context import Context
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.usage.tables import usage_records
from tests.conftest import ADMIN_TOKEN
from tests.factories import make_key, make_user, top_up, wallet_of

# "over" was priced at ten times its input price, "under" at a tenth of its output price.
WRONG = """
[[models]]
id = "over"
provider = "mock"
input_usd_per_mtok = "30.00"
output_usd_per_mtok = "15.00"

[[models]]
id = "under"
provider = "mock"
input_usd_per_mtok = "3.00"
output_usd_per_mtok = "1.50"
"""
RIGHT = WRONG.replace('"30.00"', '"3.00"').replace('"1.50"', '"15.00"')
PRICES = {"over": (Decimal(3), Decimal(15)), "under": (Decimal(3), Decimal(15))}
DAY = "2026-03-10"  # the fake clock's


def priced(ctx: Context, path: Path, text: str) -> Context:
    path.write_text(text)
    settings = ctx.settings.model_copy(update={"catalog": path})
    return dataclasses.replace(ctx, settings=settings, catalog=catalog.load(path))


@pytest.fixture
async def books(ctx: Context, tmp_path: Path) -> AsyncIterator[Context]:
    """Ada's and Bob's calls at the wrong prices; the context of the fixed catalog."""
    wrong = priced(ctx, tmp_path / "wrong.toml", WRONG)
    app = create_app(ctx.settings, ctx=wrong, limiter=MemoryRateLimiter(), background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bs.test") as client:
        for name, calls in (("ada", [("over", 2), ("under", 1)]), ("bob", [("under", 3)])):
            await make_user(ctx, name)
            await top_up(ctx, "10", user=name)
            key = (await make_key(ctx, name))["key"]
            for model, times in calls:
                for n in range(times):
                    body = {"model": model, "messages": [{"role": "user", "content": "hi " * n}]}
                    answer = await client.post(
                        "/v1/chat/completions", json=body, headers={"x-api-key": key}
                    )
                    assert answer.status_code == 200, answer.text
    yield priced(ctx, tmp_path / "right.toml", RIGHT)


async def owed(ctx: Context, wallet: int, model: str) -> int:
    """What the right prices charge the wallet's calls of `model` (the published formula),
    less what they were charged: the correction due."""
    input_price, output_price = PRICES[model]
    u = usage_records.c
    query = sa.select(u.input_tokens, u.output_tokens, u.cost_micros).where(
        u.wallet_id == wallet, u.model == model
    )
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(query))
    right = [
        (i * input_price + o * output_price).to_integral_value(rounding=ROUND_CEILING)
        for i, o, _ in rows
    ]
    return int(sum(right)) - sum(int(cost) for _, _, cost in rows)


async def reprice(ctx: Context, interface: str, model: str, *, dry_run: bool = False) -> Any:
    if interface == "cli":
        args = ["ledger", "reprice", "--model", model, "--since", DAY, "--until", DAY, "--json"]
        env = {
            "BYTESPIKE_DATABASE_URL": ctx.settings.database_url,
            "BYTESPIKE_CATALOG": str(ctx.settings.catalog),
        }
        args += ["--dry-run"] if dry_run else []
        result = await asyncio.to_thread(CliRunner().invoke, cli_app, args, env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)
    app = create_app(ctx.settings, ctx=ctx, limiter=MemoryRateLimiter(), background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bs.test") as client:
        answer = await client.post(
            "/api/v1/admin/ledger/reprice",
            json={"model": model, "since": DAY, "until": DAY, "dry_run": dry_run},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def balances(ctx: Context, wallet: int) -> ledger.Balances:
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet) == []
        return await ledger.balances(conn, wallet)


@pytest.mark.parametrize("interface", ["cli", "api"])
async def test_reprice_posts_exactly_the_difference_per_wallet_once(
    books: Context, interface: str
) -> None:
    ada, bob = await wallet_of(books, user="ada"), await wallet_of(books, user="bob")
    due = {
        ("over", ada): await owed(books, ada, "over"),
        ("under", ada): await owed(books, ada, "under"),
        ("under", bob): await owed(books, bob, "under"),
    }
    assert due[("over", ada)] < 0 < due[("under", ada)] and due[("under", bob)] > 0
    start = {wallet: await balances(books, wallet) for wallet in (ada, bob)}

    dry = await reprice(books, interface, "under", dry_run=True)
    assert [(w["wallet_id"], w["status"]) for w in dry["wallets"]] == [
        (ada, "would_apply"),
        (bob, "would_apply"),
    ]
    assert {wallet: await balances(books, wallet) for wallet in (ada, bob)} == start

    for model in ("over", "under"):
        done = await reprice(books, interface, model)
        for row in done["wallets"]:
            amount = due[(model, row["wallet_id"])]
            assert row["status"] == "applied"
            assert Decimal(str(row["amount_usd"])) * 1_000_000 == amount
            assert row["kind"] == ("debit" if amount > 0 else "credit")
    for wallet in (ada, bob):
        moved = sum(amount for (_, w), amount in due.items() if w == wallet)
        now = await balances(books, wallet)
        assert now.spent - start[wallet].spent == moved == start[wallet].available - now.available

    again = [await reprice(books, interface, model) for model in ("over", "under")]
    assert {row["status"] for run in again for row in run["wallets"]} == {"already_applied"}
    assert {wallet: await balances(books, wallet) for wallet in (ada, bob)} != start
    assert (await service.verify(books))["ok"]
