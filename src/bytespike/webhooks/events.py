"""The events bytespike publishes, their payloads, and `emit`, which puts one in the outbox.

`emit` runs inside the caller's transaction, so an event exists exactly when the change
that caused it committed. An event no enabled endpoint subscribes to is not stored.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts import views
from bytespike.billing import wallets
from bytespike.clock import iso_z
from bytespike.errors import PermissionDenied
from bytespike.money import to_usd_number
from bytespike.webhooks import outbox, repo

BALANCE_LOW = "system.balance.notify.dispatched"
TOPPED_UP = "balance.topped_up"
QUOTA_CAP_REACHED = "quota.cap_reached"
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
ORG_PAUSED = "org.paused"
ENDPOINT_DISABLED = "webhook.endpoint.disabled"
TEST = "webhook.test"

# What an endpoint may subscribe to; webhook.test goes only to the endpoint it is sent to.
SUBSCRIBABLE = (
    BALANCE_LOW,
    TOPPED_UP,
    QUOTA_CAP_REACHED,
    KEY_CREATED,
    KEY_REVOKED,
    ORG_PAUSED,
    ENDPOINT_DISABLED,
)


def new_id() -> str:
    return "msg_" + secrets.token_hex(16)


def payload(event_id: str, event_type: str, now: datetime, data: dict[str, Any]) -> str:
    body = {"id": event_id, "type": event_type, "created_at": iso_z(now), "data": data}
    return orjson.dumps(body).decode()


async def emit(
    conn: AsyncConnection,
    wallet_id: int,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    endpoint_ids: list[int] | None = None,
) -> str | None:
    """Queue an event for the wallet's subscribed endpoints (or exactly `endpoint_ids`)."""
    targets = endpoint_ids
    if targets is None:
        targets = await repo.subscribed(conn, wallet_id, event_type)
    if not targets:
        return None
    event_id = new_id()
    await outbox.enqueue(
        conn,
        event_id=event_id,
        wallet_id=wallet_id,
        event_type=event_type,
        payload=payload(event_id, event_type, now, data),
        endpoint_ids=targets,
        now=now,
    )
    return event_id


async def about_key(
    conn: AsyncConnection, key_id: int, event_type: str, data: dict[str, Any], *, now: datetime
) -> str | None:
    """key.created / key.revoked, to the owner of the wallet the key bills."""
    # Imported here: billing.payer imports billing, whose ledger emits through this module.
    from bytespike.billing import payer as payers

    try:
        payer = await payers.of_key(conn, key_id)
    except PermissionDenied:  # an enterprise user's key with no org has nobody to tell
        return None
    if payer is None:
        return None
    return await emit(conn, payer.wallet_id, event_type, {"key_id": key_id, **data}, now=now)


async def org_paused(conn: AsyncConnection, org_id: int, *, now: datetime) -> str | None:
    wallet_id = await wallets.id_for(conn, org_id=org_id)
    if wallet_id is None:
        return None
    return await emit(conn, wallet_id, ORG_PAUSED, {"org_id": org_id, "paused": True}, now=now)


async def balance_low(conn: AsyncConnection, wallet_id: int, *, now: datetime) -> str | None:
    """The low-balance page; `ledger.post` calls it once per crossing."""
    balance = views.balance(await wallets.view(conn, wallet_id))
    return await emit(conn, wallet_id, BALANCE_LOW, {"balance": balance}, now=now)


async def topped_up(
    conn: AsyncConnection, wallet_id: int, amount: int, reference: str | None, *, now: datetime
) -> str | None:
    data = {
        "amount_usd": to_usd_number(amount),
        "reference": reference,
        "balance": views.balance(await wallets.view(conn, wallet_id)),
    }
    return await emit(conn, wallet_id, TOPPED_UP, data, now=now)


async def quota_cap_reached(
    conn: AsyncConnection,
    wallet_id: int,
    *,
    key_id: int,
    model: str,
    cap: int,
    used: int,
    now: datetime,
) -> str | None:
    """For the metered gateway: call when a key's spend on `model` reaches its cap."""
    data = {
        "key_id": key_id,
        "model": model,
        "quota_cap_usd": to_usd_number(cap),
        "quota_used_usd": to_usd_number(used),
    }
    return await emit(conn, wallet_id, QUOTA_CAP_REACHED, data, now=now)
