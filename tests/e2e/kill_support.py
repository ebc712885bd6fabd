"""Load and books for the component-kill tests (test_component_kills.py): where a test strikes,
drawn from one seed; clients calling a real gateway until told to stop, each call's outcome
kept; an upstream slow enough that calls are always in flight; and the check of the books
once the holds of the calls that died have expired."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bytespike.billing import ledger, pricing
from bytespike.billing.tables import holds
from bytespike.context import Context
from bytespike.db.engine import Database
from bytespike.upstream.base import Usage
from bytespike.usage.tables import usage_records
from tests.database_faults import ReplyDropper
from tests.e2e.serve_process import MODEL, assert_books_closed
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes import openai as openai_fake
from tests.fakes.base import FakeUpstream, Script

CHAT = "/v1/chat/completions"
CLIENTS = 24
CALL_SECONDS = 30  # a call's deadline; far past any answer, so only a dead peer reaches it
BACKOFF_SECONDS = 0.05  # after a refusal or a dead connection, so a client does not spin
PACE_SECONDS = 0.25  # the upstream's beat: a paused stream goes on at the next one
# Holds of calls that died expire this soon, and the sweeper looks this often (each
# process's own clock: a fake one cannot reach the gateway's process).
SHORT_HOLDS = {"BYTESPIKE_HOLD_TTL_SECONDS": "3", "BYTESPIKE_HOLD_SWEEP_SECONDS": "0.2"}
SEED_VARIABLE = "BYTESPIKE_TEST_SEED"


@dataclass
class Plan:
    """Where a test strikes, all drawn from one seed, and what it did: said in every failure,
    and replayed by setting BYTESPIKE_TEST_SEED to the seed."""

    seed: int
    steps: list[str] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 (a replayable draw, not a secret)

    @classmethod
    def drawn(cls) -> Plan:
        given = os.environ.get(SEED_VARIABLE)
        return cls(int(given) if given else random.SystemRandom().randrange(2**32))

    def __str__(self) -> str:
        return f"{SEED_VARIABLE}={self.seed}: " + "; ".join(self.steps)

    @contextmanager
    def told(self) -> Iterator[None]:
        """Every assertion, or pytest.fail, failing inside says the seed and the steps taken."""
        try:
            yield
        except AssertionError as exc:
            exc.args = (f"[{self}]\n{exc}",)
            raise
        except pytest.fail.Exception as exc:
            exc.msg = f"[{self}]\n{exc.msg}"
            raise


@dataclass
class Call:
    """One client call and how it ended."""

    request_id: str  # sent as x-request-id: its usage record carries it
    stream: bool
    phase: str  # what the test was doing when the call began
    ended: str = ""  # and when it ended
    status: int | None = None  # None: no HTTP answer at all (refused, reset)
    whole: bool = False  # the whole answer arrived (a stream: its body to its end)
    usage: Usage | None = None  # as the answer reported it
    code: str | None = None  # a refusal's error code (or its text, if not JSON)
    retry_after: str | None = None


class Load:
    """Clients calling chat completions, streamed or not at random, until stopped (`calling`);
    `phase` names what the test is doing, and each call is tagged with it as it begins."""

    def __init__(self, key: str, rng: random.Random) -> None:
        self.key = key
        self.rng = rng
        self.phase = "before"
        self.calls: list[Call] = []  # every call begun
        self.done: list[Call] = []  # in the order they ended
        self._news = asyncio.Event()
        self._stopping = False
        self._prefix = uuid.uuid4().hex[:8]

    async def answered(
        self, n: int, where: Callable[[Call], bool] = lambda _: True, within: float = 60
    ) -> None:
        """Wait until `n` more calls matching `where` have ended."""
        seen, matched = len(self.done), 0
        try:
            async with asyncio.timeout(within):
                while True:
                    matched += sum(1 for call in self.done[seen:] if where(call))
                    seen = len(self.done)
                    if matched >= n:
                        return
                    self._news.clear()
                    await self._news.wait()
        except TimeoutError:
            pytest.fail(f"only {matched} of {n} calls ended as awaited within {within}s")

    def start(
        self, http: httpx.AsyncClient, urls: list[str], clients: int
    ) -> list[asyncio.Task[None]]:
        """`clients` clients, calling through `urls` in turn."""
        return [
            asyncio.create_task(self._client(http, urls[i % len(urls)])) for i in range(clients)
        ]

    def stop(self) -> None:
        """Each client ends once the call it is in has."""
        self._stopping = True

    async def _client(self, http: httpx.AsyncClient, url: str) -> None:
        while not self._stopping:
            call = Call(
                f"kill-{self._prefix}-{len(self.calls)}", self.rng.random() < 0.5, self.phase
            )
            self.calls.append(call)
            await make_call(http, url, self.key, call)
            call.ended = self.phase
            self.done.append(call)
            self._news.set()
            if call.status != 200 or not call.whole:
                await asyncio.sleep(BACKOFF_SECONDS)


async def make_call(http: httpx.AsyncClient, url: str, key: str, call: Call) -> None:
    """Make `call` through the gateway at `url` and keep how it ended."""
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Count."}],
    }
    if call.stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    headers = {"Authorization": f"Bearer {key}", "x-request-id": call.request_id}
    # The gateway dying or cutting the connection: no whole answer.
    with contextlib.suppress(httpx.TransportError):
        if not call.stream:
            answer = await http.post(url + CHAT, json=body, headers=headers)
            call.status = answer.status_code
            if answer.status_code != 200:
                return _refusal(call, answer)
            call.usage = usage_of(answer.json()["usage"])
            call.whole = True
            return None
        async with http.stream("POST", url + CHAT, json=body, headers=headers) as answer:
            call.status = answer.status_code
            if answer.status_code != 200:
                await answer.aread()
                return _refusal(call, answer)
            async for line in answer.aiter_lines():
                if line.startswith("data: {") and (chunk := json.loads(line[6:])).get("usage"):
                    call.usage = usage_of(chunk["usage"])
            call.whole = True
    return None


def usage_of(reported: dict[str, Any]) -> Usage:
    return Usage(reported["prompt_tokens"], reported["completion_tokens"])


def _refusal(call: Call, answer: httpx.Response) -> None:
    call.retry_after = answer.headers.get("retry-after")
    try:
        call.code = answer.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        call.code = answer.text[:200]


@asynccontextmanager
async def calling(
    urls: list[str], key: str, plan: Plan, *, clients: int = CLIENTS
) -> AsyncIterator[Load]:
    """`clients` clients calling through `urls` in turn until the block ends; then each
    finishes the call it is in."""
    load = Load(key, plan.rng)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=CALL_SECONDS, limits=limits) as http:
        clients_running = load.start(http, urls, clients)
        try:
            yield load
        finally:
            load.stop()
            await asyncio.gather(*clients_running)


async def strike_point(load: Load, plan: Plan, what: str, answers: tuple[int, int]) -> None:
    """Wait for the drawn moment of `what`: after a number of answers within `answers`, and
    up to a beat of the upstream more, so it falls anywhere in a call's life."""
    after, pause = plan.rng.randint(*answers), plan.rng.uniform(0, PACE_SECONDS)
    plan.steps.append(f"{what} after {after} answers and {pause:.3f}s")
    await load.answered(after)
    await asyncio.sleep(pause)


@asynccontextmanager
async def paced_upstream() -> AsyncIterator[FakeUpstream]:
    """The OpenAI fake, answering after a pause and holding every stream halfway until its
    next beat: at any moment calls are in flight, before their first byte and after it."""
    beat = asyncio.Event()
    async with openai_fake.running() as fake:
        fake.script = Script(chunks=6, stall_after_chunks=2, resume=beat, delay=0.1)
        beating = asyncio.create_task(_beat(beat))
        try:
            yield fake
        finally:
            beating.cancel()
            beat.set()  # streams still paused run to their end
            with contextlib.suppress(asyncio.CancelledError):
                await beating


async def _beat(beat: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(PACE_SECONDS)
        beat.set()  # wakes every stream waiting now; those that pause later wait a beat
        await asyncio.sleep(0)
        beat.clear()


async def fund(ctx: Context, usd: str) -> tuple[str, int]:
    """Ada with `usd` in her wallet and a key whose rate limit no load here reaches."""
    await make_user(ctx, "ada")
    await top_up(ctx, usd, user="ada")
    key = await make_key(ctx, "ada", rate_limit=100_000)
    return key["key"], await wallet_of(ctx, user="ada")


@asynccontextmanager
async def reply_dropping(ctx: Context, db_url: str) -> AsyncIterator[tuple[Context, ReplyDropper]]:
    """`ctx` with its database reached through a ReplyDropper, and the dropper to arm."""
    target = make_url(db_url)
    relay = ReplyDropper(target.port or 5432)
    await relay.start()
    relayed = target.set(port=relay.port).render_as_string(hide_password=False)
    settings = ctx.settings.model_copy(update={"database_url": relayed})
    through = Context(settings=settings, db=Database(relayed), catalog=ctx.catalog, clock=ctx.clock)
    try:
        yield through, relay
    finally:
        await through.db.close()
        await relay.close()


async def expired(ctx: Context, within: float = 60) -> None:
    """Wait until no hold is pending: a running gateway's sweeper expires those of the
    calls that died, once their TTL has passed."""
    deadline = time.monotonic() + within
    pending = sa.select(sa.func.count()).where(holds.c.status == "pending")
    while time.monotonic() < deadline:
        async with ctx.db.read() as conn:
            if (await conn.execute(pending)).scalar_one() == 0:
                return
        await asyncio.sleep(0.2)
    pytest.fail(f"holds still pending {within}s on")


async def assert_books(
    ctx: Context, env: dict[str, str], wallet: int, topped_up: int, calls: list[Call]
) -> ledger.Balances:
    """The books close, whatever died when: no hold pending, `ledger verify` clean (the CLI
    too), no money lost (available + spent is what was topped up), one usage record per
    settled hold, spent is what the records charged, and every call answered whole was
    billed exactly once, at its reported usage."""
    spent = await assert_books_closed(ctx, env, wallet)
    u, h = usage_records.c, holds.c
    columns = (u.hold_id, u.request_id, u.status, u.input_tokens, u.output_tokens, u.cost_micros)
    async with ctx.db.read() as conn:
        balances = await ledger.balances(conn, wallet)
        records = (await conn.execute(sa.select(*columns))).all()
        settled = (await conn.execute(sa.select(h.id).where(h.status == "settled"))).scalars()
        settled_ids = sorted(settled)
    assert balances.held == 0 and balances.available >= 0, balances
    assert balances.available + balances.spent == topped_up, balances
    assert sorted(r.hold_id for r in records) == settled_ids
    assert spent == sum(r.cost_micros for r in records)
    billed = Counter(r.request_id for r in records)
    assert [rid for rid, n in billed.items() if n > 1] == [], "calls billed more than once"
    assert set(billed) <= {c.request_id for c in calls}, "usage of calls nobody made"
    entry = ctx.catalog.get(MODEL)
    assert entry is not None
    by_id = {r.request_id: r for r in records}
    for call in calls:
        if call.status == 200 and call.whole:
            assert call.usage is not None, call
            record = by_id.get(call.request_id)
            assert record is not None, f"answered whole but never billed: {call}"
            usage = call.usage
            expected = ("ok", usage.input_tokens, usage.output_tokens, pricing.charge(entry, usage))
            assert tuple(record)[2:] == expected, call
    return balances
