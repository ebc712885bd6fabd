"""`usage report` (CLI) and GET /api/v1/admin/usage/report: every grouping and filter, from
rollups the settlement itself wrote, equal to the usage records they count; CSV; refusals
per key and reason; refusals of bad input."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bytespike.billing import ledger
from bytespike.billing.tables import wallets
from bytespike.clock import as_utc
from bytespike.context import Context
from bytespike.upstream.base import Usage
from bytespike.usage import reports
from bytespike.usage.tables import usage_records
from tests.conftest import FakeClock
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.operator_support import Operator
from tests.usage_support import assert_rollups_match, metered, mock_call, refuse

DAYS = {"since": "2026-03-10", "until": "2026-03-11"}


@dataclass
class Fleet:
    keys: dict[str, dict[str, Any]]  # "ada", "bob", "cy": each one's key
    refused: dict[tuple[str, str, str], int]  # (key owner, day, reason): refusals counted


async def fleet(ctx: Context, client: httpx.AsyncClient, clock: FakeClock) -> Fleet:
    """Dosia AI (ada, owner; bob, member) and cy on her own, over two UTC days: mock calls
    through the gateway, other models through the metering code, a released call, and
    refusals."""
    await make_org(ctx, "Dosia AI")
    for name, role in (("ada", "owner"), ("bob", "member")):
        await make_user(ctx, name, tier="enterprise")
        await add_member(ctx, "Dosia AI", name, role=role)
    await make_user(ctx, "cy")
    await top_up(ctx, "50", org="Dosia AI")
    await top_up(ctx, "20", user="cy")
    keys = {
        "ada": await make_key(ctx, "ada", org="Dosia AI", name="ada-laptop"),
        "bob": await make_key(ctx, "bob", org="Dosia AI", name="bob-ci"),
        "cy": await make_key(ctx, "cy"),
    }
    org_wallet, cy_wallet = await wallet_of(ctx, org="Dosia AI"), await wallet_of(ctx, user="cy")

    await mock_call(client, keys["ada"], "Hello there")
    await mock_call(client, keys["ada"], "Hello there, once more and a little longer")
    await mock_call(client, keys["bob"], "Hi")
    await metered(ctx, keys["cy"], cy_wallet, "gpt-5-4", Usage(1_000, 200, cached_tokens=100))
    await metered(ctx, keys["bob"], org_wallet, "claude-sonnet-4-6", Usage(500, 100))
    for _ in range(2):
        await refuse(ctx, keys["bob"], org_wallet, "rate_limited")
    clock.advance(days=1)
    await mock_call(client, keys["cy"], "Good morning")
    await metered(ctx, keys["ada"], org_wallet, "gpt-5-4", Usage(3_000, 40))
    await metered(ctx, keys["bob"], org_wallet, "gpt-5-4", None)
    await refuse(ctx, keys["cy"], cy_wallet, "insufficient_balance")
    refused = {
        ("bob", "2026-03-10", "rate_limited"): 2,
        ("cy", "2026-03-11", "insufficient_balance"): 1,
    }
    await spent(ctx)  # the books balance
    return Fleet(keys, refused)


def micros(usd: Any) -> int:
    return int(Decimal(str(usd)) * 1_000_000)


async def expected(ctx: Context, fleet: Fleet, by: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The report the usage records themselves give (summed here, not by the rollups)."""
    u = usage_records.c
    async with ctx.db.read() as conn:
        records = await conn.execute(
            sa.select(
                u.key_id, u.model, u.created_at, wallets.c.org_id,
                *(u[name] for name in (*reports.SUMMED[1:], "cost_micros")),
            ).join(wallets, wallets.c.id == u.wallet_id)
        )  # fmt: skip
        records = records.all()
    owners = {key["id"]: (name, key) for name, key in fleet.keys.items()}

    def group(key_id: int, day: str, model: str, org_id: int | None) -> tuple[Any, ...]:
        owner, key = owners[key_id]
        return {
            "user": (key["user_id"], owner),
            "key": (key_id, key["name"], key["prefix"], owner),
            "model": (model,),
            "day": (day,),
            "org": (org_id, "Dosia AI") if org_id is not None else (None, "-"),
        }[by]

    sums: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for key_id, model, at, org_id, tokens_in, tokens_out, cached, cost in records:
        sums[group(key_id, as_utc(at).date().isoformat(), model, org_id)].update(
            requests=1,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cached_tokens=cached,
            cost_micros=cost,
        )
    refused: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for (owner, day, reason), count in fleet.refused.items():
        key = fleet.keys[owner]
        refused[group(key["id"], day, "-", key["org_id"])][reason] += count
    names = (*reports.SUMMED, "cost_micros")
    return {
        g: {name: sums[g][name] for name in names} | {"refused_by_reason": dict(refused[g])}
        for g in set(sums) | set(refused)
    }


def as_found(by: str, report: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    found = {}
    for row in report["data"]:
        assert row["refused"] == sum(row["refused_by_reason"].values())
        found[tuple(row[c] for c in reports.COLUMNS[by])] = {
            "requests": row["requests"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cached_tokens": row["cached_tokens"],
            "cost_micros": micros(row["cost_usd"]),
            "refused_by_reason": row["refused_by_reason"],
        }
    return found


async def report(operator: Operator, by: str, **filters: str) -> Any:
    params = {"by": by, **DAYS, **filters}
    cli = ["usage", "report"] + [part for name, v in params.items() for part in (f"--{name}", v)]
    return await operator.ok(cli, "GET", "/api/v1/admin/usage/report", params=params)


async def spent(ctx: Context) -> int:
    """Everything spent, by the ledger (each wallet's books checked first)."""
    total = 0
    async with ctx.db.read() as conn:
        for (wallet_id,) in await conn.execute(sa.select(wallets.c.id)):
            assert await ledger.verify(conn, wallet_id) == []
            total += (await ledger.balances(conn, wallet_id)).spent
    return total


@pytest.mark.parametrize("by", reports.BYS)
async def test_each_grouping_sums_what_the_usage_records_hold(
    operator: Operator, ctx: Context, client: httpx.AsyncClient, clock: FakeClock, by: str
) -> None:
    made = await fleet(ctx, client, clock)
    await assert_rollups_match(ctx)
    answer = await report(operator, by)
    assert (answer["object"], answer["by"], answer["since"], answer["until"]) == (
        "usage_report",
        by,
        *DAYS.values(),
    )
    assert as_found(by, answer) == await expected(ctx, made, by)
    costs = [micros(row["cost_usd"]) for row in answer["data"]]
    if by == "day":
        assert [row["day"] for row in answer["data"]] == ["2026-03-10", "2026-03-11"]
    else:
        assert costs == sorted(costs, reverse=True)
    totals = answer["totals"]
    assert totals["requests"] == 8 and micros(totals["cost_usd"]) == await spent(ctx)
    assert totals["refused"] == 3
    assert totals["refused_by_reason"] == {"insufficient_balance": 1, "rate_limited": 2}


async def test_filters_narrow_to_an_org_a_user_a_key_a_model_and_days(
    operator: Operator, ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    made = await fleet(ctx, client, clock)
    keys = made.keys

    org = await report(operator, "user", org="Dosia AI")
    assert {row["username"] for row in org["data"]} == {"ada", "bob"}
    assert org["totals"]["requests"] == 6 and org["totals"]["refused"] == 2

    bob = await report(operator, "model", user="bob")
    assert {row["model"]: row["requests"] for row in bob["data"]} == {
        "mock": 1,
        "claude-sonnet-4-6": 1,
        "gpt-5-4": 1,  # released: counted, nothing charged
        "-": 0,  # his refusals, which carry no model
    }
    assert [row["refused"] for row in bob["data"] if row["model"] == "-"] == [2]

    one_key = await report(operator, "day", key=str(keys["ada"]["id"]))
    assert [(r["day"], r["requests"]) for r in one_key["data"]] == [
        ("2026-03-10", 2),
        ("2026-03-11", 1),
    ]

    gpt = await report(operator, "key", model="gpt-5-4")
    assert {row["key_id"]: row["requests"] for row in gpt["data"]} == {
        keys["ada"]["id"]: 1,
        keys["bob"]["id"]: 1,
        keys["cy"]["id"]: 1,
    }
    assert gpt["totals"]["refused"] == 0  # a model filter leaves refusals out

    second = await report(operator, "org", since="2026-03-11", until="2026-03-11")
    assert {(r["org_id"], r["org"]): r["requests"] for r in second["data"]} == {
        (None, "-"): 1,
        (keys["ada"]["org_id"], "Dosia AI"): 2,
    }
    assert second["totals"]["refused_by_reason"] == {"insufficient_balance": 1}

    nothing = await report(operator, "user", since="2026-03-12", until="2026-04-12")
    assert nothing["data"] == [] and nothing["totals"]["requests"] == 0


async def test_csv_has_a_header_and_the_same_rows_either_way(
    operator: Operator, ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await fleet(ctx, client, clock)
    as_json = await report(operator, "key")
    if operator.interface == "cli":
        args = ["usage", "report", "--by", "key", "--since", DAYS["since"], "--until"]
        code, text, err = await operator.run_cli([*args, DAYS["until"], "--format", "csv"])
        assert code == 0, err
    else:
        answer = await operator.client.get(
            "/api/v1/admin/usage/report",
            params={"by": "key", "format": "csv", **DAYS},
            headers=operator.admin_headers,
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        text = answer.text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "key_id", "name", "prefix", "username", "requests", "input_tokens", "output_tokens",
        "cached_tokens", "cost_usd", "refused",
    ]  # fmt: skip
    assert len(rows) == 1 + len(as_json["data"])
    for line, row in zip(rows[1:], as_json["data"], strict=True):
        assert line[:4] == [str(row["key_id"]), row["name"] or "", row["prefix"], row["username"]]
        assert int(line[4]) == row["requests"] and int(line[9]) == row["refused"]
        assert micros(line[8]) == micros(row["cost_usd"])  # exact decimal text


async def test_the_table_shows_each_row_and_the_totals(
    cli_operator: Operator, ctx: Context, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await fleet(ctx, client, clock)
    code, text, err = await cli_operator.run_cli(["usage", "report", "--by", "user", *_days()])
    assert code == 0, err
    lines = text.splitlines()
    assert lines[0] == "usage by user, 2026-03-10 to 2026-03-11 (UTC)"
    assert lines[1].split() == [
        "user_id", "username", "requests", "input", "output", "cached", "cost_usd", "refused",
    ]  # fmt: skip
    assert sorted(line.split()[1] for line in lines[2:5]) == ["ada", "bob", "cy"]
    assert lines[5].split()[:3] == ["total", "-", "8"] and len(lines) == 6


def _days() -> list[str]:
    return ["--since", DAYS["since"], "--until", DAYS["until"]]


@pytest.mark.parametrize(
    ("filters", "status", "words"),
    [
        ({"by": "user", "since": "2026-03-12", "until": "2026-03-11"}, 400, "is after until"),
        ({"by": "week"}, 400, "by must be one of"),
        ({"by": "user", "since": "12/03/2026"}, 400, "since must be a date"),
        ({"by": "user", "org": "Nobody Inc"}, 404, "no org"),
        ({"by": "user", "user": "zed"}, 404, "no user"),
        ({"by": "user", "key": "999"}, 404, "no key"),
        ({"by": "user", "key": "abc"}, 404, "no key"),
    ],
)
async def test_bad_filters_are_refused_with_the_reason(
    operator: Operator, filters: dict[str, str], status: int, words: str
) -> None:
    cli = ["usage", "report"] + [part for name, v in filters.items() for part in (f"--{name}", v)]
    message = await operator.fails(
        cli, "GET", "/api/v1/admin/usage/report", params=filters, status=status
    )
    assert words in message


async def test_without_days_a_report_covers_the_30_days_ending_today(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock, admin_headers: dict[str, str]
) -> None:
    """Today by the server's clock (the CLI's is the machine's: this is the API's test)."""
    await fleet(ctx, client, clock)  # ends on 2026-03-11
    clock.advance(days=29)
    answer = await client.get(
        "/api/v1/admin/usage/report", params={"by": "day"}, headers=admin_headers
    )
    body = answer.json()
    assert (body["since"], body["until"]) == ("2026-03-11", "2026-04-09")
    assert [row["day"] for row in body["data"]] == ["2026-03-11"]
    alone = await client.get(
        "/api/v1/admin/usage/report",
        params={"by": "day", "until": "2026-03-10"},
        headers=admin_headers,
    )
    assert (alone.json()["since"], alone.json()["until"]) == ("2026-02-09", "2026-03-10")
    unauthorised = await client.get("/api/v1/admin/usage/report", params={"by": "day"})
    assert unauthorised.status_code == 401
