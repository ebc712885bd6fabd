"""Idempotency claims on both databases: of twenty concurrent claims of one key on four
servers exactly one is taken; a claim ends kept, spent or given back by how its call was
billed; a claim whose call died expires with the hold TTL (and its late end changes
nothing); answers expire after 24 h and the sweep deletes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse

from bytespike import catalog
from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.db.engine import Database
from bytespike.idempotency import answers, claims, sweeper
from bytespike.idempotency.answers import Answer
from bytespike.idempotency.claims import AnswerNotKept, KeyInUse, KeyReused, Taken
from bytespike.idempotency.tables import idempotency_keys
from bytespike.keys.cache import CachedKey, KeyCache
from tests.conftest import FakeClock
from tests.factories import make_key, make_user

BODY = orjson.dumps({"model": "mock", "messages": [{"role": "user", "content": "Hi"}]})


def request(idempotency_key: str = "k-1", path: str = "/v1/chat/completions") -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"idempotency-key", idempotency_key.encode())],
        "state": {"request_id": "req_first", "rate_headers": {"x-ratelimit-limit": "600"}},
    }
    return Request(scope)


@dataclass
class Server:
    """One gateway's view of the database: its own engine and group-commit writer."""

    ctx: Context
    writes: GroupCommit

    async def claim(self, key: CachedKey, idempotency_key: str = "k-1") -> claims.Claim:
        return await claims.claim(self.ctx, self.writes, key, request(idempotency_key), BODY)


@pytest.fixture
async def server(ctx: Context) -> AsyncIterator[Server]:
    writes = GroupCommit(ctx.db)
    yield Server(ctx, writes)
    await writes.close()


@pytest.fixture
async def key(ctx: Context) -> CachedKey:
    await make_user(ctx, "ada")
    secret = (await make_key(ctx, "ada"))["key"]
    return await KeyCache(ctx).resolve(secret)


async def states(ctx: Context) -> list[tuple[str, str]]:
    async with ctx.db.read() as conn:
        query = sa.select(idempotency_keys.c.idempotency_key, idempotency_keys.c.state)
        return sorted((row[0], row[1]) for row in await conn.execute(query))


async def test_of_twenty_concurrent_claims_on_four_servers_exactly_one_is_taken(
    ctx: Context, clock: FakeClock, key: CachedKey
) -> None:
    servers = []
    for _ in range(4):
        db = Database(ctx.settings.database_url)
        servers.append(Server(Context(ctx.settings, db, catalog.load(), clock), GroupCommit(db)))
    try:
        outcomes = await asyncio.gather(
            *(server.claim(key) for server in servers * 5), return_exceptions=True
        )
    finally:
        for server in servers:
            await server.writes.close()
            await server.ctx.db.close()
    taken = [o for o in outcomes if isinstance(o, Taken)]
    assert len(taken) == 1, outcomes
    assert all(isinstance(o, KeyInUse) for o in outcomes if o not in taken), outcomes
    assert await states(ctx) == [("k-1", "running")]


async def test_a_billed_answer_is_replayed_as_sent(
    ctx: Context, server: Server, key: CachedKey
) -> None:
    taken = await server.claim(key)
    answer = JSONResponse({"id": "chatcmpl-1"}, headers={"x-ratelimit-limit": "600"})
    async with taken:
        await taken.settled(billed=True)
        assert await taken.recorded(answer) is answer
    replay = (await server.claim(key)).replay
    assert replay is not None
    assert (replay.status_code, replay.body) == (200, answer.body)
    assert replay.headers["content-type"] == "application/json"
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["original-request"] == "req_first"
    assert replay.headers["x-ratelimit-limit"] == "600"
    with pytest.raises(KeyReused):
        await claims.claim(server.ctx, server.writes, key, request(path="/v1/responses"), BODY)


async def test_a_call_billed_nothing_gives_its_key_back(
    ctx: Context, server: Server, key: CachedKey
) -> None:
    taken = await server.claim(key)
    async with taken:
        await taken.settled(billed=False)  # an upstream refusal without usage: released
        await taken.recorded(JSONResponse({"error": {}}, status_code=502))
    assert await states(ctx) == []
    failed = await server.claim(key)
    with pytest.raises(RuntimeError):
        async with failed:
            raise RuntimeError("a bug before the hold")
    assert await states(ctx) == []
    assert isinstance(await server.claim(key), Taken)


async def test_a_billed_call_with_nothing_to_replay_leaves_its_key_spent(
    ctx: Context, server: Server, key: CachedKey
) -> None:
    huge = JSONResponse({"data": "x" * answers.MAX_BYTES})  # past what is kept
    large = await server.claim(key, "large")
    async with large:
        await large.settled(billed=True)
        assert await large.recorded(huge) is huge  # the client still gets it whole
    failed = await server.claim(key, "failed")
    with pytest.raises(RuntimeError):
        async with failed:
            await failed.settled(billed=True)
            raise RuntimeError("a bug after the bill")
    assert await states(ctx) == [("failed", "spent"), ("large", "spent")]
    with pytest.raises(AnswerNotKept) as refused:
        await server.claim(key, "large")
    assert refused.value.status == 409 and refused.value.headers == {"x-should-retry": "false"}


async def test_a_claim_whose_call_died_expires_with_the_hold_ttl(
    ctx: Context, clock: FakeClock, server: Server, key: CachedKey
) -> None:
    dead = await server.claim(key)
    assert isinstance(dead, Taken)
    clock.advance(seconds=ctx.settings.hold_ttl_seconds - 1)
    with pytest.raises(KeyInUse):
        await server.claim(key)
    clock.advance(seconds=1)
    again = await server.claim(key)
    assert isinstance(again, Taken)
    # The first call ends after all: its claim is not its own any more, so it keeps nothing.
    await dead.settled(billed=True)
    await dead.finish(Answer(200, "application/json", b"{}"))
    with pytest.raises(KeyInUse):
        await server.claim(key)


async def test_answers_expire_after_24_hours_and_are_swept(
    ctx: Context, clock: FakeClock, server: Server, key: CachedKey
) -> None:
    for name in ("old", "new"):
        taken = await server.claim(key, name)
        assert isinstance(taken, Taken)
        await taken.settled(billed=True)
        await taken.finish(Answer(200, "application/json", b"{}"))
        clock.advance(hours=1)
    clock.advance(hours=21, minutes=59, seconds=59)
    assert await sweeper.sweep_once(ctx) == 0  # "old" is a second short of 24 h: kept
    clock.advance(seconds=1)
    assert await sweeper.sweep_once(ctx) == 1
    assert await states(ctx) == [("new", "answered")]
    assert isinstance(await server.claim(key, "old"), Taken)
