"""Webhooks as an owner meets them: a real `bytespike serve`, its in-process dispatcher, a
real receiver verifying every signature with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio

import httpx

from tests.factories import make_key, make_user, top_up
from tests.integration.webhooks_support import receiving, wait_for
from tests.processes import BYTESPIKE, clean_env, serving


async def test_owner_is_paged_by_the_running_server(ctx, db_url, tmp_path):
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx))["key"]
    headers = {"Authorization": f"Bearer {key}"}
    env = clean_env(
        BYTESPIKE_DATABASE_URL=db_url,
        BYTESPIKE_SECRET_KEY="test-secret-key",
        BYTESPIKE_WEBHOOK_ALLOW_PRIVATE="1",
        BYTESPIKE_WEBHOOK_POLL_SECONDS="0.1",
    )
    async with receiving() as receiver, httpx.AsyncClient(timeout=10) as http:
        with serving(env, tmp_path) as (base,):
            created = await http.post(
                f"{base}/api/v1/me/webhooks",
                headers=headers,
                json={
                    "url": f"{receiver.url}/hook",
                    "events": ["system.balance.notify.dispatched", "balance.topped_up"],
                },
            )
            assert created.status_code == 201, created.text
            receiver.secrets["/hook"] = created.json()["secret"]

            # Raising the threshold over the balance is a crossing: paged.
            threshold = await http.put(
                f"{base}/api/v1/me/notifications",
                headers=headers,
                json={"low_balance_threshold_usd": 20},
            )
            assert threshold.status_code == 200, threshold.text
            await wait_for(receiver, 1)

            # An operator's top-up through the CLI, a separate process: told too.
            cli = await asyncio.create_subprocess_exec(
                BYTESPIKE,
                "credits",
                "topup",
                "--user",
                "ada",
                "--usd",
                "15",
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
            )
            assert await cli.wait() == 0
            await wait_for(receiver, 2)
            account = (await http.get(f"{base}/api/v1/me/account", headers=headers)).json()

    low, topped = (d.body for d in receiver.received)
    assert all(d.verified for d in receiver.received)
    assert low["type"] == "system.balance.notify.dispatched"
    assert low["data"]["balance"]["available_usd"] == 10.0
    assert low["data"]["balance"]["low_balance_flagged"] is True
    assert topped["type"] == "balance.topped_up"
    assert topped["data"]["amount_usd"] == 15.0
    assert topped["data"]["balance"] == account["balance"]
    assert len(set(receiver.ids())) == 2
