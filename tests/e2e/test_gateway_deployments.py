"""A model served by several deployments: a deployment that fails before the client's first
byte (connect error, timeout, 429, 5xx) is followed by the next, and the client gets one
answer, billed once at the model's price, with every attempt on its usage record; calls
spread over several upstream keys by weight; a failing deployment cools down and is probed
back; a call makes at most `upstream_attempts` tries."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from bytespike import catalog
from bytespike.billing.tables import holds, ledger_entries
from bytespike.context import Context
from bytespike.upstream import deployments
from bytespike.upstream.registry import Providers
from bytespike.usage.tables import usage_records
from tests.conftest import FakeClock
from tests.e2e.gateway_support import Upstreams, books_balance, gateway
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes import openai as openai_fake
from tests.fakes.base import FakeUpstream
from tests.metrics_support import Scrape
from tests.processes import free_port

TEN_DOLLARS = 10_000_000
# The fakes report 12 input and 7 output tokens; at $1 and $2 per million tokens that is
# 12 + 14 micro-dollars: what one call costs, whichever deployment answers it.
ONE_CALL = 26
PRICES = """
input_usd_per_mtok = "1.00"
output_usd_per_mtok = "2.00"
context_tokens = 100000
max_output_tokens = 1000
"""
KEYS = {"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary", "THIRD_KEY": "sk-third"}


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - repeatable draws, not a secret


def deployment(name: str, url: str, key: str, **fields: Any) -> str:
    extra = "".join(f"{field} = {value}\n" for field, value in fields.items())
    return (
        f'[[models.deployments]]\nname = "{name}"\nprovider = "openai"\n'
        f'base_url = "{url}"\napi_key_env = "{key}"\n{extra}'
    )


def model(model_id: str, *deployed: str) -> str:
    return f'[[models]]\nid = "{model_id}"\n{PRICES}\n' + "\n".join(deployed)


@pytest.fixture
async def second() -> AsyncIterator[FakeUpstream]:
    """Another OpenAI-compatible upstream: the fallback."""
    async with openai_fake.running() as fake:
        fake.script.text = "The secondary answers."
        yield fake


def use_catalog(ctx: Context, tmp_path: Path, *models: str) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text("\n".join(models))
    ctx.catalog = catalog.load(path)


async def funded_key(ctx: Context) -> tuple[dict[str, str], int]:
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx, "ada")
    return {"Authorization": f"Bearer {key['key']}"}, await wallet_of(ctx, user="ada")


@asynccontextmanager
async def serving(
    ctx: Context,
    fakes: Upstreams,
    *,
    clock: FakeClock | None = None,
    seed: int = 0,
    **settings: Any,
) -> AsyncIterator[tuple[str, Providers]]:
    """The gateway with providers of our own: seeded randomness, the test's clock, and
    `settings` (attempts, breaker, timeouts) changed."""
    changed = ctx.settings.model_copy(update=settings)
    providers = Providers(ctx.catalog, changed, env=KEYS, clock=clock, rng=seeded(seed))
    async with gateway(ctx, fakes, providers=providers) as url:
        yield url, providers


async def chat(url: str, headers: dict[str, str], model_id: str, *, stream: bool = False) -> Any:
    """The answer's text and status; a stream is read to its end, its text joined."""
    body = {"model": model_id, "max_tokens": 500, "messages": [{"role": "user", "content": "Hi"}]}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        if not stream:
            answer = await http.post("/v1/chat/completions", json=body, headers=headers)
            if answer.status_code != 200:
                return answer.status_code, answer.json()["error"]["message"]
            return 200, answer.json()["choices"][0]["message"]["content"]
        body["stream"] = True
        async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
            lines = [line async for line in r.aiter_lines() if line.startswith("data: {")]
        chunks = [orjson.loads(line[6:]) for line in lines]
        assert not any("error" in chunk for chunk in chunks)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        return r.status_code, text


async def deployments_up(url: str, model_id: str) -> dict[str, float]:
    """`bytespike_deployment_up` of each of the model's deployments, as /metrics shows it."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        scrape = Scrape.parse((await http.get("/metrics")).text)
    return {
        dict(labels)["deployment"]: value
        for (name, labels), value in scrape.samples.items()
        if name == "bytespike_deployment_up" and ("model", model_id) in labels
    }


async def records(ctx: Context) -> list[Any]:
    u = usage_records.c
    query = sa.select(u.status, u.http_status, u.cost_micros, u.provider, u.attempts)
    async with ctx.db.read() as conn:
        return list((await conn.execute(query.order_by(u.id))).all())


def tried(record: Any) -> list[tuple[str, str, int | None]]:
    """The record's attempts: (deployment, outcome, upstream status), latency checked."""
    attempts = orjson.loads(record.attempts)
    assert all(isinstance(a["latency_ms"], int) and a["latency_ms"] >= 0 for a in attempts)
    return [(a["deployment"], a["outcome"], a.get("upstream_status")) for a in attempts]


async def assert_billed_once(ctx: Context, wallet: int, cost: int = ONE_CALL) -> None:
    """One hold, one settlement, `cost` spent, nothing left held; the ledger verified."""
    balances = await books_balance(ctx, wallet)  # ledger.verify first
    assert (balances.available, balances.held, balances.spent) == (TEN_DOLLARS - cost, 0, cost)
    async with ctx.db.read() as conn:
        placed = (await conn.execute(sa.select(sa.func.count()).select_from(holds))).scalar()
        kinds = sa.select(ledger_entries.c.kind).where(ledger_entries.c.kind != "topup")
        entries = sorted((await conn.execute(kinds)).scalars())
    assert placed == 1
    assert entries == (["hold", "settle"] if cost else ["hold", "release"])


# How each failure kind is made on the primary, and how its attempt is recorded.
FAILURES = {
    "connect": ("unavailable", None),
    "timeout": ("timeout", None),
    "429": ("upstream_error", 429),
    "503": ("upstream_error", 503),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", list(FAILURES))
async def test_a_failing_deployment_falls_back_and_the_call_is_billed_once(
    ctx: Context,
    fakes: Upstreams,
    second: FakeUpstream,
    tmp_path: Path,
    kind: str,
    stream: bool,
) -> None:
    primary = fakes.openai
    primary_url = f"http://127.0.0.1:{free_port()}/v1" if kind == "connect" else primary.url
    if kind == "timeout":
        primary.script.delay = 1.0  # past the 0.2 s read timeout below, before any header
    elif kind != "connect":
        primary.script.status = int(kind)
    use_catalog(
        ctx,
        tmp_path,
        model(
            "duo",
            deployment("primary", primary_url, "PRIMARY_KEY"),
            deployment("secondary", second.url, "SECONDARY_KEY", priority=2),
        ),
    )
    headers, wallet = await funded_key(ctx)
    async with serving(ctx, fakes, upstream_read_timeout_seconds=0.2) as (url, _):
        assert await chat(url, headers, "duo", stream=stream) == (200, "The secondary answers.")
    assert len(primary.requests) == (0 if kind == "connect" else 1)
    assert len(second.requests) == 1
    assert second.headers[0]["Authorization"] == "Bearer sk-secondary"
    (record,) = await records(ctx)
    assert (record.status, record.http_status, record.cost_micros) == ("ok", 200, ONE_CALL)
    assert record.provider == "openai"
    outcome, status = FAILURES[kind]
    assert tried(record) == [("primary", outcome, status), ("secondary", "ok", None)]
    await assert_billed_once(ctx, wallet)


async def test_a_stream_falls_back_across_providers_in_the_clients_format(
    ctx: Context, fakes: Upstreams, second: FakeUpstream, tmp_path: Path
) -> None:
    """An Anthropic client of a model whose Anthropic deployment is overloaded (529) gets
    its stream from the OpenAI fallback, translated, before its first byte."""
    fakes.anthropic.script.status = 529
    fallback = deployment("openai", second.url, "SECONDARY_KEY", priority=2)
    use_catalog(
        ctx,
        tmp_path,
        model(
            "mixed",
            f'[[models.deployments]]\nname = "anthropic"\nprovider = "anthropic"\n'
            f'base_url = "{fakes.anthropic.url}"\napi_key_env = "PRIMARY_KEY"\n',
            fallback,
        ),
    )
    headers, wallet = await funded_key(ctx)
    body = {
        "model": "mixed",
        "max_tokens": 500,
        "stream": True,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    async with (
        serving(ctx, fakes) as (url, _),
        httpx.AsyncClient(base_url=url) as http,
        http.stream("POST", "/v1/messages", json=body, headers=headers) as answer,
    ):
        assert answer.status_code == 200
        events = [line async for line in answer.aiter_lines() if line.startswith("event: ")]
    assert events[0] == "event: message_start" and events[-1] == "event: message_stop"
    assert "event: error" not in events
    assert len(fakes.anthropic.requests) == 1 and len(second.requests) == 1
    (record,) = await records(ctx)
    assert (record.status, record.provider, record.cost_micros) == ("ok", "openai", ONE_CALL)
    assert tried(record) == [("anthropic", "upstream_error", 529), ("openai", "ok", None)]
    await assert_billed_once(ctx, wallet)


async def test_a_call_makes_at_most_the_attempt_limit_and_the_last_failure_is_the_answer(
    ctx: Context, fakes: Upstreams, second: FakeUpstream, tmp_path: Path
) -> None:
    fakes.openai.script.status = second.script.status = 503
    fakes.openai.script.error_message = second.script.error_message = "overloaded"
    use_catalog(
        ctx,
        tmp_path,
        model(
            "quad",
            deployment("a", fakes.openai.url, "PRIMARY_KEY", priority=1),
            deployment("b", second.url, "SECONDARY_KEY", priority=2),
            deployment("c", fakes.openai.url, "THIRD_KEY", priority=3),
            deployment("d", second.url, "THIRD_KEY", priority=4),
        ),
    )
    headers, wallet = await funded_key(ctx)
    async with serving(ctx, fakes, upstream_attempts=3) as (url, _):
        assert await chat(url, headers, "quad") == (502, "overloaded")
    assert len(fakes.openai.requests) + len(second.requests) == 3
    (record,) = await records(ctx)
    assert (record.status, record.http_status, record.cost_micros) == ("upstream_error", 502, 0)
    assert tried(record) == [(name, "upstream_error", 503) for name in "abc"]
    await assert_billed_once(ctx, wallet, cost=0)


async def test_a_4xx_is_the_answer_and_is_not_retried(
    ctx: Context, fakes: Upstreams, second: FakeUpstream, tmp_path: Path
) -> None:
    fakes.openai.script.status, fakes.openai.script.error_message = 400, "bad temperature"
    use_catalog(
        ctx,
        tmp_path,
        model(
            "duo",
            deployment("primary", fakes.openai.url, "PRIMARY_KEY"),
            deployment("secondary", second.url, "SECONDARY_KEY", priority=2),
        ),
    )
    headers, wallet = await funded_key(ctx)
    async with serving(ctx, fakes) as (url, _):
        assert await chat(url, headers, "duo") == (400, "bad temperature")
    assert second.requests == []
    (record,) = await records(ctx)
    assert tried(record) == [("primary", "upstream_error", 400)]
    await assert_billed_once(ctx, wallet, cost=0)


def health(providers: Providers, model_id: str) -> dict[str, tuple[str, int]]:
    states = providers.health.states()
    return {s.deployment: (s.state, s.failures) for s in states if s.model == model_id}


async def test_a_failing_deployment_cools_down_is_probed_and_recovers(
    ctx: Context, fakes: Upstreams, second: FakeUpstream, tmp_path: Path, clock: FakeClock
) -> None:
    primary = fakes.openai
    primary.script.status = 500
    use_catalog(
        ctx,
        tmp_path,
        model(
            "duo",
            deployment("primary", primary.url, "PRIMARY_KEY"),
            deployment("secondary", second.url, "SECONDARY_KEY", priority=2),
        ),
    )
    headers, wallet = await funded_key(ctx)
    breaker = {"upstream_breaker_failures": 2, "upstream_breaker_cooldown_seconds": 30}
    async with serving(ctx, fakes, clock=clock, **breaker) as (url, providers):
        assert health(providers, "duo") == {"primary": ("closed", 0), "secondary": ("closed", 0)}
        assert await deployments_up(url, "duo") == {"primary": 1, "secondary": 1}
        for _ in range(2):  # two failures in a row open the primary's breaker
            assert (await chat(url, headers, "duo"))[0] == 200
        assert health(providers, "duo")["primary"] == ("open", 2)
        assert await deployments_up(url, "duo") == {"primary": 0, "secondary": 1}
        assert await chat(url, headers, "duo") == (200, "The secondary answers.")
        assert len(primary.requests) == 2  # skipped while it cools down

        clock.advance(seconds=31)  # cooled down: one probe, which fails
        assert (await chat(url, headers, "duo"))[0] == 200
        assert len(primary.requests) == 3
        assert health(providers, "duo")["primary"] == ("open", 3)
        assert (await chat(url, headers, "duo"))[0] == 200
        assert len(primary.requests) == 3  # opened again for another cool-down

        primary.script.status = 200
        clock.advance(seconds=31)  # the next probe succeeds: the primary is back
        for _ in range(2):
            assert await chat(url, headers, "duo") == (200, "Hello from the fake upstream.")
        assert health(providers, "duo")["primary"] == ("closed", 0)
        assert await deployments_up(url, "duo") == {"primary": 1, "secondary": 1}
    assert len(primary.requests) == 5 and len(second.requests) == 5
    outcomes = [tried(record) for record in await records(ctx)]
    failed, fell_back = ("primary", "upstream_error", 500), ("secondary", "ok", None)
    assert outcomes == [
        [failed, fell_back],
        [failed, fell_back],
        [fell_back],  # skipped: not an attempt
        [failed, fell_back],  # the probe
        [fell_back],
        [("primary", "ok", None)],
        [("primary", "ok", None)],
    ]
    await books_balance(ctx, wallet)  # ledger.verify


async def test_every_deployment_cooling_down_is_tried_anyway(
    ctx: Context, fakes: Upstreams, tmp_path: Path, clock: FakeClock
) -> None:
    """A breaker routes around a failing deployment; it never refuses a call: a model with
    one deployment behaves as before deployments."""
    fakes.openai.script.status = 503
    use_catalog(ctx, tmp_path, model("solo", deployment("only", fakes.openai.url, "PRIMARY_KEY")))
    headers, _wallet = await funded_key(ctx)
    async with serving(ctx, fakes, clock=clock, upstream_breaker_failures=1) as (url, providers):
        for _ in range(3):
            assert (await chat(url, headers, "solo"))[0] == 502
        assert health(providers, "solo") == {"only": ("open", 3)}
        fakes.openai.script.status = 200
        assert (await chat(url, headers, "solo"))[0] == 200
        assert health(providers, "solo") == {"only": ("closed", 0)}
    assert len(fakes.openai.requests) == 4


async def test_calls_spread_over_several_upstream_keys_by_weight(
    ctx: Context, fakes: Upstreams, second: FakeUpstream, tmp_path: Path
) -> None:
    """Three keys, two on one upstream and one on another, weighted 1, 2 and 5: with a
    seeded generator, each upstream key gets exactly the calls the weighted draw gives it."""
    use_catalog(
        ctx,
        tmp_path,
        model(
            "spread",
            deployment("key-1", fakes.openai.url, "PRIMARY_KEY", weight=1),
            deployment("key-2", fakes.openai.url, "SECONDARY_KEY", weight=2),
            deployment("key-3", second.url, "THIRD_KEY", weight=5),
        ),
    )
    headers, wallet = await funded_key(ctx)
    calls = 48
    async with serving(ctx, fakes, seed=14) as (url, _):
        for _ in range(calls):
            assert (await chat(url, headers, "spread"))[0] == 200
    received = Counter(h["Authorization"] for h in fakes.openai.headers + second.headers)
    spread = ctx.catalog.get("spread")
    assert spread is not None
    draws = seeded(14)
    expected = Counter(deployments.order(spread.deployments, draws)[0].name for _ in range(calls))
    assert received == {
        "Bearer sk-primary": expected["key-1"],
        "Bearer sk-secondary": expected["key-2"],
        "Bearer sk-third": expected["key-3"],
    }
    assert len(second.requests) == expected["key-3"]
    assert expected["key-1"] < expected["key-2"] < expected["key-3"]  # the weights show
    assert sum(expected.values()) == calls
    await assert_billed_once_per_call(ctx, wallet, calls)


async def assert_billed_once_per_call(ctx: Context, wallet: int, calls: int) -> None:
    balances = await books_balance(ctx, wallet)
    assert (balances.held, balances.spent) == (0, calls * ONE_CALL)
    assert len(await records(ctx)) == calls
