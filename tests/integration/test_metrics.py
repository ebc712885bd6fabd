"""GET /metrics, read as Prometheus reads it: each metered call counted once by route,
model, status and refusal reason, timed once if it reached the upstream; the tokens and
money settled equal to what the books hold; pending holds, held money and the webhook
outbox read from the database; delivery outcomes and group-commit batch sizes; an
optional token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from bytespike.app import create_app
from bytespike.billing import ledger
from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.keys import service as keys
from bytespike.metrics.families import Metrics
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.usage.tables import usage_records
from bytespike.webhooks import events, service
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.integration.ledger_support import place, release
from tests.integration.webhooks_support import dispatching, receiving
from tests.metrics_support import CHAT, Scrape, requests

PROMPT = [{"role": "user", "content": "how many tokens is this?"}]


@pytest.fixture
def app(ctx: Context, limiter: MemoryRateLimiter) -> FastAPI:
    return create_app(ctx.settings, ctx=ctx, limiter=limiter, background=False)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bytespike.test") as c:
        yield c


async def scrape(client: httpx.AsyncClient, **headers: str) -> Scrape:
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return Scrape.parse(answer.text)


async def chat(
    client: httpx.AsyncClient, key: str, model: str = "mock", *, stream: bool = False
) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": 50}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return await client.post(CHAT, json=body, headers={"Authorization": f"Bearer {key}"})


async def booked(ctx: Context, wallet_id: int) -> tuple[int, int, int]:
    """(input tokens, output tokens, micro-dollars spent) as the books hold them."""
    u = usage_records.c
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet_id) == []
        spent = (await ledger.balances(conn, wallet_id)).spent
        tokens = sa.select(sa.func.sum(u.input_tokens), sa.func.sum(u.output_tokens))
        input_tokens, output_tokens = (await conn.execute(tokens)).one()
    return int(input_tokens), int(output_tokens), spent


async def test_each_call_is_counted_once_and_what_it_settled_matches_the_books(ctx, client):
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx))["key"]
    before = await scrape(client)

    answers = [await chat(client, key) for _ in range(3)]
    answers.append(await chat(client, key, stream=True))
    answers.append(await chat(client, key, "no-such-model"))
    answers.append(await chat(client, "sk-bs-not-a-key"))
    messages = await client.post(
        "/v1/messages",
        json={"model": "mock", "max_tokens": 50, "messages": PROMPT},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
    )
    assert [a.status_code for a in [*answers, messages]] == [200, 200, 200, 200, 404, 401, 200]
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert requests(after, "mock", 200) - requests(before, "mock", 200) == 4
    assert requests(after, "", 404, "model_not_found") == 1  # a name not in the catalog: no label
    assert requests(after, "", 401, "authentication_error") == 1
    assert requests(after, "mock", 200, route="/v1/messages") == 1
    # Timed: the five calls that reached the upstream, and no refusal.
    assert moved("bytespike_added_latency_seconds_count", route=CHAT) == 4
    assert moved("bytespike_added_latency_seconds_count", route="/v1/messages") == 1
    assert moved("bytespike_upstream_latency_seconds_count", model="mock", stream="false") == 4
    assert moved("bytespike_upstream_latency_seconds_count", model="mock", stream="true") == 1
    assert moved("bytespike_settlements_total", model="mock", status="ok") == 5
    attempts = "bytespike_upstream_attempts_total"
    assert after.total(attempts, model="mock", outcome="ok") - before.total(attempts) == 5

    input_tokens, output_tokens, spent = await booked(ctx, await wallet_of(ctx, user="ada"))
    assert spent > 0
    assert moved("bytespike_settled_tokens_total", model="mock", kind="input") == input_tokens
    assert moved("bytespike_settled_tokens_total", model="mock", kind="output") == output_tokens
    assert moved("bytespike_settled_microdollars_total", model="mock") == spent
    assert after.value("bytespike_pending_holds") == 0
    assert after.value("bytespike_held_microdollars") == 0
    # Every hold and settlement was committed in some batch.
    assert moved("bytespike_group_commit_batch_size_sum") >= 10


async def test_pending_holds_and_held_money_are_read_from_the_books(ctx, client):
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    wallet = await wallet_of(ctx, user="ada")
    first = await place(ctx, wallet, "0.25")
    await place(ctx, wallet, "1.5")
    held = await scrape(client)
    assert (held.value("bytespike_pending_holds"), held.value("bytespike_held_microdollars")) == (
        2,
        1_750_000,
    )
    await release(ctx, first)
    after = await scrape(client)
    assert after.value("bytespike_pending_holds") == 1
    assert after.value("bytespike_held_microdollars") == 1_500_000
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet) == []


async def test_the_outbox_depth_and_each_delivery_attempts_outcome(ctx, app, client):
    """Two endpoints get a top-up's event: one answers, one's port is closed (tried again
    later). The scrape shows two deliveries waiting, then one, and one attempt of each."""
    await make_user(ctx)
    holder = await keys.resolve(ctx, (await make_key(ctx))["key"])
    ctx.settings.webhook_allow_private = True
    async with receiving() as receiver, dispatching(ctx, metrics=app.state.metrics) as dispatcher:
        for url in (f"{receiver.url}/hook", "http://127.0.0.1:9/closed"):
            made = await service.create(
                ctx, holder, url=url, event_types=[events.TOPPED_UP], description=None
            )
            receiver.secrets["/hook"] = receiver.secrets.get("/hook", made["secret"])
        await top_up(ctx, "5", user="ada")
        waiting = await scrape(client)
        assert waiting.value("bytespike_webhook_outbox_depth") == 2
        assert await dispatcher.run_once() == 2
    after = await scrape(client)
    assert after.value("bytespike_webhook_outbox_depth") == 1  # the closed port's, for later
    assert after.value("bytespike_webhook_attempts_total", outcome="succeeded") == 1
    assert after.value("bytespike_webhook_attempts_total", outcome="retrying") == 1
    assert len(receiver.received) == 1


async def test_group_commit_observes_each_batch_it_commits(ctx):
    """Five writes queued in one turn of the event loop commit as one batch of five."""
    metrics = Metrics()
    writes = GroupCommit(ctx.db, batches=metrics.batched)

    async def op(conn: Any) -> int:
        return int((await conn.execute(sa.text("SELECT 1"))).scalar_one())

    try:
        assert await asyncio.gather(*(writes.run(op) for _ in range(5))) == [1] * 5
        assert await writes.run(op) == 1
    finally:
        await writes.close()
    scrape = Scrape.parse(metrics.exposition().decode())
    assert scrape.value("bytespike_group_commit_batch_size_count") == 2
    assert scrape.value("bytespike_group_commit_batch_size_sum") == 6
    assert scrape.value("bytespike_group_commit_batch_size_bucket", le="1.0") == 1
    assert scrape.value("bytespike_group_commit_batch_size_bucket", le="4.0") == 1
    assert scrape.value("bytespike_group_commit_batch_size_bucket", le="8.0") == 2


@pytest.mark.parametrize("token", ["", "scrape-token"])
async def test_a_metrics_token_guards_the_scrape_when_set(ctx, token):
    ctx.settings.metrics_token = token or None
    app = create_app(ctx.settings, ctx=ctx, limiter=MemoryRateLimiter(), background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bytespike.test") as c:
        bare = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer not-it"})
        right = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    if not token:
        assert {bare.status_code, wrong.status_code, right.status_code} == {200}
        return
    assert (bare.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert bare.json()["error"]["type"] == "authentication_error"
    assert "bytespike_requests_total" not in bare.text
    assert Scrape.parse(right.text).has("bytespike_pending_holds")
