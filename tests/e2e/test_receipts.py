"""A call's receipt (GET /api/v1/me/usage/{id}) and the price book's periods: a scheduled
price change prices the calls that start after it, and /v1/models shows it coming."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import httpx
import pytest

from bytespike import catalog
from bytespike.app import create_app
from bytespike.billing import ledger, reconciliation
from bytespike.context import Context
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.upstream.base import Usage
from tests.conftest import FakeClock
from tests.e2e.gateway_support import books_balance
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.usage_support import metered

# The fake clock starts at 2026-03-10 12:00 UTC; the new prices start an hour later.
CATALOG = """
[[models]]
id = "echo"
provider = "mock"
context_tokens = 200000
max_output_tokens = 4096

[[models.prices]]
input_usd_per_mtok = "3.00"
output_usd_per_mtok = "15.00"

[[models.prices]]
id = "echo-march-price"
effective_from = 2026-03-10T13:00:00Z
input_usd_per_mtok = "1.50"
output_usd_per_mtok = "10.00"
"""
HI = [{"role": "user", "content": "Hello there"}]


def served(ctx: Context, book: catalog.Catalog) -> httpx.AsyncClient:
    """The app in-process with this catalog (the mock provider needs no upstream)."""
    priced = dataclasses.replace(ctx, catalog=book)
    app = create_app(ctx.settings, ctx=priced, limiter=MemoryRateLimiter(), background=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bs.test")


@pytest.fixture
async def gateway(ctx: Context, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    async with served(ctx, catalog.load(path)) as client:
        yield client


async def call(client: httpx.AsyncClient, key: str) -> dict[str, object]:
    """One call and its receipt."""
    auth = {"Authorization": f"Bearer {key}"}
    answer = await client.post(
        "/v1/chat/completions", headers=auth, json={"model": "echo", "messages": HI}
    )
    assert answer.status_code == 200, answer.text
    listed = (await client.get("/api/v1/me/usage", headers=auth)).json()["data"]
    receipt = await client.get(f"/api/v1/me/usage/{listed[0]['id']}", headers=auth)
    assert receipt.status_code == 200, receipt.text
    body: dict[str, object] = receipt.json()
    return body


def micros(text: object) -> Decimal:
    return Decimal(str(text)) * 1_000_000


async def test_a_price_change_prices_the_calls_that_start_after_it(
    ctx: Context, clock: FakeClock, gateway: httpx.AsyncClient
) -> None:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx, "ada"))["key"]
    auth = {"Authorization": f"Bearer {key}"}
    shown = (await gateway.get("/v1/models/echo", headers=auth)).json()["pricing"]
    assert (shown["period"], shown["input_usd_per_mtok"]) == ("echo@initial", 3.0)
    assert [(p["period"], p["effective_from"]) for p in shown["scheduled"]] == [
        ("echo-march-price", "2026-03-10T13:00:00Z")
    ]

    before = await call(gateway, key)
    clock.advance(hours=1)
    after = await call(gateway, key)

    assert before["price_period"] == "echo@initial"
    assert after["price_period"] == "echo-march-price"
    for receipt, (input_price, output_price) in (
        (before, ("3.00", "15.00")),
        (after, ("1.50", "10.00")),
    ):
        lines = {line["class"]: line for line in receipt["lines"]}  # type: ignore[attr-defined]
        assert lines["input"]["usd_per_mtok"] == input_price
        assert lines["output"]["usd_per_mtok"] == output_price
        tokens = lines["input"]["tokens"], lines["output"]["tokens"]
        exact = tokens[0] * Decimal(input_price) + tokens[1] * Decimal(output_price)
        assert sum(micros(line["amount_usd"]) for line in lines.values()) == exact
        rounded = exact.to_integral_value(rounding=ROUND_CEILING)  # once, up
        assert micros(receipt["cost_usd"]) == micros(receipt["charged_usd"]) == rounded
    shown = (await gateway.get("/v1/models/echo", headers=auth)).json()["pricing"]
    assert (shown["period"], shown["scheduled"]) == ("echo-march-price", [])
    spent = (await books_balance(ctx, await wallet_of(ctx, user="ada"))).spent
    assert spent == micros(before["charged_usd"]) + micros(after["charged_usd"])


async def test_a_receipt_names_its_hold_and_ledger_entries_and_is_the_callers_alone(
    ctx: Context, gateway: httpx.AsyncClient
) -> None:
    await make_user(ctx, "ada")
    await make_user(ctx, "bob")
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx, "ada"))["key"]
    stranger = (await make_key(ctx, "bob"))["key"]

    receipt = await call(gateway, key)

    assert receipt["object"] == "usage.receipt" and receipt["tier"] == {"above_prompt_tokens": 0}
    assert "rounded up to a whole micro-dollar once per call" in str(receipt["rounding"])
    entries = receipt["ledger_entries"]
    assert [e["kind"] for e in entries] == ["hold", "settle"]  # type: ignore[index]
    assert micros(entries[1]["spent_usd"]) == micros(receipt["charged_usd"])  # type: ignore[index]
    assert receipt["hold_id"] is not None and receipt["corrections"] == []
    for caller, record in ((stranger, receipt["id"]), (key, "999999"), (key, "not-an-id")):
        missing = await gateway.get(
            f"/api/v1/me/usage/{record}", headers={"Authorization": f"Bearer {caller}"}
        )
        assert missing.status_code == 404, missing.text


async def test_a_receipt_lists_an_expiry_or_a_release_beside_the_entries_it_names(
    ctx: Context, gateway: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A record names its hold's 'hold' and 'settle' entries; an 'expire' or 'release' entry
    is found by its hold. A call that outlived its hold's TTL (the sweeper expired it, the
    settlement then charged `available`) and one that ended without usage (its hold given
    back) list every entry of their holds, in order, the money as the ledger moved it."""
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada")
    wallet = await wallet_of(ctx, user="ada")
    usage = Usage(input_tokens=100, output_tokens=20)
    # gpt-5-4: the receipt shows the prices the record keeps, whatever this catalog says.
    late, charged = await metered(ctx, key, wallet, "gpt-5-4", usage, outlived=clock)
    failed, _ = await metered(ctx, key, wallet, "gpt-5-4", None)  # ends without usage

    auth = {"Authorization": f"Bearer {key['key']}"}
    listed = (await gateway.get("/api/v1/me/usage", headers=auth)).json()["data"]
    assert len(listed) == 2
    receipts = {}
    for item in listed:
        answer = await gateway.get(f"/api/v1/me/usage/{item['id']}", headers=auth)
        assert answer.status_code == 200, answer.text
        receipts[int(answer.json()["hold_id"])] = answer.json()
    expired = receipts[late.hold_id]["ledger_entries"]
    assert [e["kind"] for e in expired] == ["hold", "expire", "settle"]
    assert [int(e["id"]) for e in expired] == sorted(int(e["id"]) for e in expired)
    assert micros(expired[2]["spent_usd"]) == charged > 0
    released = receipts[failed.hold_id]["ledger_entries"]
    assert [(e["kind"], e["spent_usd"]) for e in released] == [("hold", 0), ("release", 0)]
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet) == []
    async with ctx.db.read() as conn:  # `ledger verify`: the records name their entries
        assert (await reconciliation.run(conn)).ok
