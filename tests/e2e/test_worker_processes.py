"""Several `bytespike worker` processes sharing one PostgreSQL database deliver every
event exactly once between them (FOR UPDATE SKIP LOCKED claims), never one attempt twice."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bytespike.keys import service as keys
from bytespike.settings import Settings
from bytespike.webhooks import service
from bytespike.webhooks.tables import webhook_attempts
from tests.factories import make_key, make_user, top_up
from tests.integration.webhooks_support import loopback_settings, receiving, wait_for
from tests.processes import BYTESPIKE, clean_env

EVENTS = 60
WORKERS = 3


@pytest.fixture
def db_url(postgres_database: str) -> str:
    """PostgreSQL only: SQLite's single writer makes the race impossible to begin with."""
    from tests.conftest import _truncate

    asyncio.run(_truncate(postgres_database))
    return postgres_database


@pytest.fixture
def settings(db_url: str) -> Settings:
    return loopback_settings(db_url)


async def test_worker_processes_never_send_an_event_twice(ctx, db_url, tmp_path):
    await make_user(ctx)
    key = await make_key(ctx)
    async with receiving() as receiver:
        receiver.delay = 0.01
        record = await keys.resolve(ctx, key["key"])
        created = await service.create(
            ctx,
            record,
            url=f"{receiver.url}/hook",
            event_types=["balance.topped_up"],
            description=None,
        )
        receiver.secrets["/hook"] = created["secret"]
        for i in range(EVENTS):
            await top_up(ctx, "1", user="ada", reference=f"payment-{i}")

        env = clean_env(
            BYTESPIKE_DATABASE_URL=db_url,
            BYTESPIKE_SECRET_KEY="test-secret-key",
            BYTESPIKE_WEBHOOK_ALLOW_PRIVATE="1",
            BYTESPIKE_WEBHOOK_POLL_SECONDS="0.05",
            BYTESPIKE_LOG_LEVEL="WARNING",
            # One claim per delivery: claims interleave constantly, so racing claims happen.
            BYTESPIKE_WEBHOOK_BATCH="1",
        )
        workers = [
            await asyncio.create_subprocess_exec(BYTESPIKE, "worker", env=env, cwd=tmp_path)
            for _ in range(WORKERS)
        ]
        try:
            await wait_for(receiver, EVENTS, seconds=60)
            await asyncio.sleep(1)  # a double send would arrive in this window
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                await worker.wait()

    assert len(receiver.received) == EVENTS
    assert len(set(receiver.ids())) == EVENTS
    assert all(d.verified for d in receiver.received)
    async with ctx.db.read() as conn:
        attempts = await conn.execute(sa.select(sa.func.count()).select_from(webhook_attempts))
        assert attempts.scalar_one() == EVENTS
