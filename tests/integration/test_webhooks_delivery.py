"""Webhook delivery through the outbox and the dispatcher, against a real loopback receiver."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bytespike.accounts import views
from bytespike.billing import holds, wallets
from bytespike.context import Context
from bytespike.db.engine import Database
from bytespike.keys import service as keys
from bytespike.keys.repo import KeyRecord
from bytespike.orgs import service as orgs
from bytespike.settings import Settings
from bytespike.webhooks import events, outbox, service
from bytespike.webhooks.dispatcher import MAX_ATTEMPTS
from bytespike.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_events
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.integration.webhooks_support import (
    dispatching,
    drain,
    loopback_settings,
    receiving,
)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return loopback_settings(db_url)


async def holder(ctx: Context, username: str = "ada", **options: object) -> KeyRecord:
    minted = await make_key(ctx, username, **options)
    return await keys.resolve(ctx, minted["key"])


async def subscribe(ctx, key, receiver, path: str, types: list[str]) -> dict:
    created = await service.create(
        ctx, key, url=receiver.url + path, event_types=types, description=None
    )
    receiver.secrets[path] = created["secret"]
    return created


async def test_top_up_is_delivered_signed_with_the_account_balance(ctx):
    await make_user(ctx)
    key = await holder(ctx)
    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        await subscribe(ctx, key, receiver, "/hook", [events.TOPPED_UP])
        await top_up(ctx, "12.5", user="ada", reference="pay-1")
        assert await drain(dispatcher) == 1
    [got] = receiver.received
    assert got.verified
    assert got.body["id"] == got.webhook_id and got.body["type"] == "balance.topped_up"
    async with ctx.db.read() as conn:
        balance = views.balance(await wallets.view(conn, await wallet_of(ctx, user="ada")))
    assert got.body["data"] == {"amount_usd": 12.5, "reference": "pay-1", "balance": balance}


async def test_failing_receiver_gets_the_same_event_id_once_it_recovers(ctx, clock):
    await make_user(ctx)
    key = await holder(ctx)
    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        created = await subscribe(ctx, key, receiver, "/hook", [events.TOPPED_UP])
        receiver.statuses = [500, 503, 404]
        await top_up(ctx, "10", user="ada")
        for _ in range(4):
            assert await dispatcher.run_once() == 1
            assert await dispatcher.run_once() == 0  # not due again before its backoff
            clock.advance(hours=3)
    assert len(receiver.received) == 4
    assert len(set(receiver.ids())) == 1
    assert all(d.verified for d in receiver.received)
    history = await service.deliveries(ctx, key, created["id"])
    [delivery] = history["data"]
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 4
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 404, 200]


async def test_a_dispatcher_killed_mid_flight_loses_nothing(ctx, clock):
    await make_user(ctx)
    key = await holder(ctx)
    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        await subscribe(ctx, key, receiver, "/hook", [events.TOPPED_UP])
        await top_up(ctx, "10", user="ada")
        receiver.stall = True
        inflight = asyncio.create_task(dispatcher.run_once())
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        inflight.cancel()  # the process dies with the request in the air
        with pytest.raises(asyncio.CancelledError):
            await inflight
        receiver.stall = False
        receiver.unblock.set()
        assert await dispatcher.run_once() == 0  # still leased to the dead dispatcher
        clock.advance(seconds=dispatcher.lease.total_seconds() + 1)
        assert await dispatcher.run_once() == 1
    assert len(receiver.received) == 2
    assert receiver.ids()[0] == receiver.ids()[1]
    async with ctx.db.read() as conn:
        states = (await conn.execute(sa.select(webhook_deliveries.c.status))).scalars().all()
    assert states == ["succeeded"]


async def test_low_balance_fires_once_per_crossing_and_rearms_on_top_up(ctx, clock):
    await make_user(ctx)  # default threshold: 5 USD
    key = await holder(ctx)
    wallet_id = await wallet_of(ctx, user="ada")

    async def hold(usd: int) -> int:
        async with ctx.db.write() as conn:
            return await holds.place(
                conn, wallet_id, usd * 1_000_000, now=clock.now(), ttl=timedelta(minutes=5)
            )

    async def release(hold_id: int) -> None:
        async with ctx.db.write() as conn:
            await holds.release(conn, hold_id, now=clock.now())

    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        await subscribe(ctx, key, receiver, "/hook", [events.BALANCE_LOW])
        await top_up(ctx, "10", user="ada")
        first = await hold(6)  # 4 left: crosses
        await release(first)  # back to 10: hold churn does not re-arm
        for _ in range(3):
            await release(await hold(6))
        await hold(1)
        await drain(dispatcher)
        assert len(receiver.received) == 1
        page = receiver.received[0].body
        assert page["type"] == "system.balance.notify.dispatched"
        assert page["data"]["balance"]["available_usd"] == 4.0
        assert page["data"]["balance"]["low_balance_flagged"] is True
        await top_up(ctx, "1", user="ada")  # 10 available, above 5: re-armed
        await hold(6)  # 4 left: crosses again
        await drain(dispatcher)
    assert [d.body["type"] for d in receiver.received] == [
        "system.balance.notify.dispatched",
        "system.balance.notify.dispatched",
    ]
    assert all(d.verified for d in receiver.received)
    assert len(set(receiver.ids())) == 2


async def test_threshold_change_rearms_and_top_up_below_threshold_does_not(ctx, clock):
    await make_user(ctx)
    key = await holder(ctx)
    wallet_id = await wallet_of(ctx, user="ada")
    async with receiving() as receiver:
        await subscribe(ctx, key, receiver, "/hook", [events.BALANCE_LOW])
        await top_up(ctx, "6", user="ada")
        async with ctx.db.write() as conn:
            await holds.place(conn, wallet_id, 2_000_000, now=clock.now(), ttl=timedelta(hours=1))
        await top_up(ctx, "0.5", user="ada")  # 4.5: still at or below, not re-armed
        async with ctx.db.write() as conn:
            await holds.place(conn, wallet_id, 1_000_000, now=clock.now(), ttl=timedelta(hours=1))
            await wallets.set_threshold(conn, wallet_id, 3_000_000, now=clock.now())  # re-arms
            await holds.place(conn, wallet_id, 500_000, now=clock.now(), ttl=timedelta(hours=1))
        async with ctx.db.read() as conn:
            kinds = (
                (
                    await conn.execute(
                        sa.select(webhook_events.c.type).order_by(webhook_events.c.created_at)
                    )
                )
                .scalars()
                .all()
            )
    assert kinds == [events.BALANCE_LOW, events.BALANCE_LOW]


async def test_raising_the_threshold_over_the_balance_pages_once(ctx, client, clock):
    """Setting a threshold at or above what is available is a crossing: paged at once,
    once; lowering it below the balance again re-arms the alert."""
    await make_user(ctx)
    minted = await make_key(ctx)
    key = await keys.resolve(ctx, minted["key"])
    headers = {"Authorization": f"Bearer {minted['key']}"}

    async def set_threshold(usd: float) -> None:
        response = await client.put(
            "/api/v1/me/notifications", headers=headers, json={"low_balance_threshold_usd": usd}
        )
        assert response.status_code == 200, response.text

    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        await subscribe(ctx, key, receiver, "/hook", [events.BALANCE_LOW])
        await top_up(ctx, "8", user="ada")  # above the default 5: armed
        await set_threshold(8)  # 8 <= 8: crossing
        await set_threshold(9)  # still at or below: no second page
        await drain(dispatcher)
        assert [
            d.body["data"]["balance"]["low_balance_threshold_usd"] for d in receiver.received
        ] == [8.0]
        assert receiver.received[0].body["data"]["balance"]["low_balance_flagged"] is True
        await set_threshold(2)  # 8 > 2: re-armed
        await set_threshold(10)  # crossing again
        await drain(dispatcher)
    assert [d.body["data"]["balance"]["low_balance_threshold_usd"] for d in receiver.received] == [
        8.0,
        10.0,
    ]
    assert all(d.verified for d in receiver.received)


async def test_two_dispatchers_never_send_one_attempt_twice(ctx, settings, clock):
    await make_user(ctx)
    key = await holder(ctx)
    count = 40
    other = Context(
        settings=settings, db=Database(settings.database_url), catalog=ctx.catalog, clock=clock
    )
    try:
        async with receiving() as receiver:
            created = await subscribe(ctx, key, receiver, "/hook", [events.TOPPED_UP])
            for i in range(count):
                await top_up(ctx, "1", user="ada", reference=f"pay-{i}")
            receiver.delay = 0.01
            async with dispatching(ctx, batch=3) as one, dispatching(other, batch=3) as two:
                sent = await asyncio.gather(drain(one), drain(two))
        assert sum(sent) == count
        assert all(sent), "both dispatchers should have taken part"
        assert sorted(receiver.ids()) == sorted(set(receiver.ids()))
        assert len(receiver.received) == count
        assert all(d.verified for d in receiver.received)
        history = await service.deliveries(ctx, key, created["id"])
        assert {d["attempt_count"] for d in history["data"]} == {1}
    finally:
        await other.db.close()


async def test_an_endpoint_failing_for_a_day_is_disabled_and_the_owner_told(ctx, clock):
    await make_user(ctx)
    key = await holder(ctx)
    jitter = random.Random(7)  # noqa: S311 - seeded jitter, not security
    async with receiving() as receiver, dispatching(ctx, rng=jitter) as dispatcher:
        dead = await subscribe(ctx, key, receiver, "/dead", [events.TOPPED_UP])
        await subscribe(ctx, key, receiver, "/alive", [events.ENDPOINT_DISABLED])
        receiver.statuses = [500] * MAX_ATTEMPTS
        await top_up(ctx, "10", user="ada")
        started = clock.now()
        for _ in range(MAX_ATTEMPTS):
            assert await dispatcher.run_once() == 1
            clock.advance(hours=10)
        await drain(dispatcher)
    assert clock.now() - started > timedelta(hours=20)
    shown = await service.get(ctx, key, dead["id"])
    assert shown["enabled"] is False and "failed" in shown["disabled_reason"]
    told = receiver.received[-1]
    assert told.verified and told.body["type"] == "webhook.endpoint.disabled"
    assert told.body["data"]["endpoint_id"] == dead["id"]
    assert len(receiver.received) == MAX_ATTEMPTS + 1


async def test_key_org_and_quota_events_are_written_with_the_change(ctx, clock):
    await make_user(ctx, "ada", tier="enterprise")
    await make_org(ctx, "Dosia AI")
    await add_member(ctx, "Dosia AI", "ada", "owner")
    key = await holder(ctx)
    wallet_id = await wallet_of(ctx, org="Dosia AI")
    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        types = [
            events.KEY_CREATED,
            events.KEY_REVOKED,
            events.ORG_PAUSED,
            events.QUOTA_CAP_REACHED,
        ]
        await subscribe(ctx, key, receiver, "/hook", types)
        minted = await make_key(ctx, "ada", name="ci")
        await keys.revoke(ctx, minted["id"])
        await keys.revoke(ctx, minted["id"])  # already revoked: no second event
        async with ctx.db.write() as conn:
            await events.quota_cap_reached(
                conn,
                wallet_id,
                key_id=minted["id"],
                model="gpt-5-4",
                cap=50_000_000,
                used=50_000_000,
                now=clock.now(),
            )
        await orgs.set_paused(ctx, org="Dosia AI", paused=True)
        await orgs.set_paused(ctx, org="Dosia AI", paused=True)
        await drain(dispatcher)
    bodies = [d.body for d in receiver.received]
    assert all(d.verified for d in receiver.received)
    assert [b["type"] for b in bodies] == [
        "key.created",
        "key.revoked",
        "quota.cap_reached",
        "org.paused",
    ]
    assert bodies[0]["data"]["key_id"] == minted["id"] and bodies[0]["data"]["name"] == "ci"
    assert bodies[2]["data"] == {
        "key_id": minted["id"],
        "model": "gpt-5-4",
        "quota_cap_usd": 50.0,
        "quota_used_usd": 50.0,
    }


async def test_event_rolls_back_with_its_change(ctx):
    await make_user(ctx)
    key = await holder(ctx)
    async with receiving() as receiver:
        await subscribe(ctx, key, receiver, "/hook", [events.TOPPED_UP])
    wallet_id = await wallet_of(ctx, user="ada")
    with pytest.raises(RuntimeError):
        async with ctx.db.write() as conn:
            await wallets.top_up(conn, wallet_id, 1_000_000, now=ctx.clock.now())
            await events.topped_up(conn, wallet_id, 1_000_000, None, now=ctx.clock.now())
            raise RuntimeError("the process dies before commit")
    async with ctx.db.read() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(webhook_events))
        ).scalar_one() == 0


async def test_signing_secret_is_sealed_at_rest(ctx):
    await make_user(ctx)
    key = await holder(ctx)
    async with receiving() as receiver:
        created = await subscribe(ctx, key, receiver, "/hook", [events.TOPPED_UP])
    async with ctx.db.read() as conn:
        stored = (await conn.execute(sa.select(webhook_endpoints.c.secret_sealed))).scalar_one()
    assert created["secret"].startswith("whsec_")
    assert created["secret"] not in stored and created["secret"][6:] not in stored


async def test_claim_skips_disabled_endpoints_until_re_enabled(ctx):
    await make_user(ctx)
    key = await holder(ctx)
    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        created = await subscribe(ctx, key, receiver, "/hook", [events.TOPPED_UP])
        await top_up(ctx, "1", user="ada")
        await service.update(ctx, key, created["id"], {"enabled": False})
        async with ctx.db.write() as conn:
            assert (
                await outbox.claim(conn, now=ctx.clock.now(), lease=timedelta(seconds=5), limit=10)
                == []
            )
        await service.update(ctx, key, created["id"], {"enabled": True})
        assert await drain(dispatcher) == 1
    assert receiver.received[0].verified
