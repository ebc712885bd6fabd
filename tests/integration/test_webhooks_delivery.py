"""Webhook delivery through the outbox and the dispatcher, against a real loopback receiver."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import orjson
import pytest
import sqlalchemy as sa

from bytespike.accounts import views
from bytespike.billing import holds, wallets
from bytespike.context import Context
from bytespike.db.engine import Database
from bytespike.keys import service as keys
from bytespike.keys.repo import KeyRecord
from bytespike.money import parse_usd
from bytespike.orgs import service as orgs
from bytespike.settings import Settings
from bytespike.webhooks import events, outbox, service
from bytespike.webhooks.dispatcher import MAX_ATTEMPTS
from bytespike.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_events
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.integration.ledger_support import place, problems, release, settle
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


async def low_balance_pages(ctx: Context) -> list[dict]:
    """The low-balance pages in the outbox, oldest first (the balance each showed)."""
    async with ctx.db.read() as conn:
        e = webhook_events.c
        query = sa.select(e.payload).where(e.type == events.BALANCE_LOW).order_by(e.created_at)
        payloads = (await conn.execute(query)).scalars().all()
    return [orjson.loads(payload)["data"]["balance"] for payload in payloads]


async def listening_for_low_balance(ctx: Context) -> int:
    """ada, an endpoint of hers subscribed to low-balance pages, and 10 USD (above the
    default 5 USD threshold: armed); her wallet id."""
    await make_user(ctx)
    key = await holder(ctx)
    await service.create(
        ctx, key, url="http://127.0.0.1:9/hook", event_types=[events.BALANCE_LOW], description=None
    )
    await top_up(ctx, "10", user="ada")
    return await wallet_of(ctx, user="ada")


async def test_a_hold_that_crosses_the_threshold_and_is_released_pages_nothing(ctx, clock):
    """A hold moves money from available to held: settled money (available + held) does not
    change, so a hold dipping available under the threshold is no crossing, whether it is
    released, or expires."""
    wallet_id = await listening_for_low_balance(ctx)
    for _ in range(3):
        hold_id = await place(ctx, wallet_id, "6")  # 4 available, 10 settled
        assert await release(ctx, hold_id)
    await place(ctx, wallet_id, "9.5", ttl=timedelta(minutes=1))  # 0.5 available
    clock.advance(minutes=2)
    async with ctx.db.write() as conn:
        assert await holds.expire_due(conn, now=clock.now()) == 1
    assert await low_balance_pages(ctx) == []
    assert await problems(ctx, wallet_id) == []


async def test_a_settlement_crossing_the_threshold_pages_exactly_once(ctx):
    wallet_id = await listening_for_low_balance(ctx)
    await settle(ctx, await place(ctx, wallet_id, "6"), "5.5")  # settled 4.5 <= 5: pages
    await settle(ctx, await place(ctx, wallet_id, "1"), "0.5")  # settled 4: paged already
    await settle(ctx, await place(ctx, wallet_id, "1"), "0")  # a free settlement
    [page] = await low_balance_pages(ctx)
    assert (page["available_usd"], page["low_balance_flagged"]) == (4.5, True)
    assert await problems(ctx, wallet_id) == []


async def test_a_top_up_lifting_settled_money_over_the_threshold_rearms(ctx):
    wallet_id = await listening_for_low_balance(ctx)
    await settle(ctx, await place(ctx, wallet_id, "6"), "6")  # settled 4: pages
    await top_up(ctx, "0.5", user="ada")  # settled 4.5: still at or below, not re-armed
    await settle(ctx, await place(ctx, wallet_id, "1"), "0.5")  # settled 4: no second page
    hold_id = await place(ctx, wallet_id, "3")  # 1 available, 4 settled
    await top_up(ctx, "1.5", user="ada")  # settled 5.5 > 5 although available is 2.5: armed
    await settle(ctx, hold_id, "0.25")  # settled 5.25: above, no page
    await settle(ctx, await place(ctx, wallet_id, "1"), "0.25")  # settled 5: pages again
    pages = await low_balance_pages(ctx)
    assert [page["available_usd"] for page in pages] == [4.0, 5.0]
    assert await problems(ctx, wallet_id) == []


async def test_moving_the_threshold_is_judged_against_settled_money(ctx, clock):
    wallet_id = await listening_for_low_balance(ctx)
    hold_id = await place(ctx, wallet_id, "6")  # 4 available, 10 settled

    async def threshold(usd: str) -> None:
        async with ctx.db.write() as conn:
            await wallets.set_threshold(conn, wallet_id, parse_usd(usd), now=clock.now())

    await threshold("6")  # over available, under settled: no crossing
    assert await low_balance_pages(ctx) == []
    await threshold("10")  # 10 <= 10: a crossing
    await threshold("9")  # 10 > 9: re-armed
    await release(ctx, hold_id)  # changes no settled money: nothing
    await settle(ctx, await place(ctx, wallet_id, "2"), "1")  # settled 9 <= 9: pages
    pages = await low_balance_pages(ctx)
    assert [page["low_balance_threshold_usd"] for page in pages] == [10.0, 9.0]
    assert await problems(ctx, wallet_id) == []


async def test_low_balance_pages_are_delivered_once_per_crossing(ctx, clock):
    await make_user(ctx)  # default threshold: 5 USD
    key = await holder(ctx)
    wallet_id = await wallet_of(ctx, user="ada")
    async with receiving() as receiver, dispatching(ctx) as dispatcher:
        await subscribe(ctx, key, receiver, "/hook", [events.BALANCE_LOW])
        await top_up(ctx, "10", user="ada")
        for _ in range(3):
            await release(ctx, await place(ctx, wallet_id, "6"))  # hold churn: no page
        await settle(ctx, await place(ctx, wallet_id, "6"), "6")  # settled 4: crosses
        await settle(ctx, await place(ctx, wallet_id, "1"), "1")
        await drain(dispatcher)
        assert len(receiver.received) == 1
        page = receiver.received[0].body
        assert page["type"] == "system.balance.notify.dispatched"
        assert page["data"]["balance"]["available_usd"] == 4.0
        assert page["data"]["balance"]["low_balance_flagged"] is True
        await top_up(ctx, "7", user="ada")  # settled 10, above 5: re-armed
        await settle(ctx, await place(ctx, wallet_id, "6"), "6")  # settled 4: crosses again
        await drain(dispatcher)
    assert [d.body["type"] for d in receiver.received] == [
        "system.balance.notify.dispatched",
        "system.balance.notify.dispatched",
    ]
    assert all(d.verified for d in receiver.received)
    assert len(set(receiver.ids())) == 2
    assert await problems(ctx, wallet_id) == []


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
