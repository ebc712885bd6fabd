"""Use cases on webhook endpoints, for the owner of the paying wallet (see owners.py).

Another owner's endpoint id answers 404, exactly like an id that does not exist, so ids
reveal nothing across users or orgs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.clock import as_utc, iso_z
from bytespike.context import Context
from bytespike.errors import InvalidRequest, NotFound
from bytespike.keys.repo import KeyRecord
from bytespike.webhooks import events, owners, repo, signing, urls
from bytespike.webhooks.repo import Endpoint
from bytespike.webhooks.signing import SecretBox

MAX_ENDPOINTS = 20


def view(endpoint: Endpoint, secret: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "enabled": bool(endpoint.enabled),
        "disabled_reason": endpoint.disabled_reason,
        "created_at": iso_z(as_utc(endpoint.created_at)),
    }
    if secret is not None:
        shown["secret"] = secret  # shown on creation and rotation only
    return shown


def checked_events(requested: list[str]) -> list[str]:
    if not requested:
        raise InvalidRequest("events: subscribe to at least one event")
    unknown = [e for e in requested if e not in events.SUBSCRIBABLE]
    if unknown:
        raise InvalidRequest(
            f"events: unknown {', '.join(unknown)}; known: {', '.join(events.SUBSCRIBABLE)}"
        )
    return list(dict.fromkeys(requested))


async def _owned(conn: AsyncConnection, key: KeyRecord, endpoint_id: int) -> Endpoint:
    payer = await owners.manager(conn, key)
    endpoint = await repo.owned(conn, payer.wallet_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


async def create(
    ctx: Context, key: KeyRecord, *, url: str, event_types: list[str], description: str | None
) -> dict[str, Any]:
    chosen = checked_events(event_types)
    await urls.check(url, allow_private=ctx.settings.webhook_allow_private)
    secret = signing.mint()
    sealed = SecretBox.from_settings(ctx.settings).seal(secret)
    async with ctx.db.write() as conn:
        payer = await owners.manager(conn, key)
        if len(await repo.of_wallet(conn, payer.wallet_id)) >= MAX_ENDPOINTS:
            raise InvalidRequest(f"at most {MAX_ENDPOINTS} webhook endpoints per wallet")
        endpoint_id = await repo.insert(
            conn,
            wallet_id=payer.wallet_id,
            url=url,
            description=description,
            events=chosen,
            secret_sealed=sealed,
            now=ctx.clock.now(),
        )
        endpoint = await repo.by_id(conn, endpoint_id)
    assert endpoint is not None
    return view(endpoint, secret)


async def listing(ctx: Context, key: KeyRecord) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        payer = await owners.manager(conn, key)
        found = await repo.of_wallet(conn, payer.wallet_id)
    return {"data": [view(e) for e in found]}


async def get(ctx: Context, key: KeyRecord, endpoint_id: int) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        return view(await _owned(conn, key, endpoint_id))


async def update(
    ctx: Context, key: KeyRecord, endpoint_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "url" in changes:
        await urls.check(changes["url"], allow_private=ctx.settings.webhook_allow_private)
        values["url"] = changes["url"]
    if "events" in changes:
        values["events"] = checked_events(changes["events"])
    if "description" in changes:
        values["description"] = changes["description"]
    if "enabled" in changes:
        values["enabled"] = changes["enabled"]
        if changes["enabled"]:
            values["disabled_reason"] = None
    async with ctx.db.write() as conn:
        endpoint = await _owned(conn, key, endpoint_id)
        if values:
            await repo.update(conn, endpoint.id, **values)
        updated = await repo.by_id(conn, endpoint.id)
    assert updated is not None
    return view(updated)


async def delete(ctx: Context, key: KeyRecord, endpoint_id: int) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        endpoint = await _owned(conn, key, endpoint_id)
        await repo.delete(conn, endpoint.id)
    return {"id": endpoint_id, "deleted": True}


async def send_test(ctx: Context, key: KeyRecord, endpoint_id: int) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        endpoint = await _owned(conn, key, endpoint_id)
        data = {"endpoint_id": endpoint.id, "message": "a test event from bytespike"}
        event_id = await events.emit(
            conn, endpoint.wallet_id, events.TEST, data, now=now, endpoint_ids=[endpoint.id]
        )
    return {"event_id": event_id, "type": events.TEST, "endpoint_id": endpoint_id}


async def rotate_secret(ctx: Context, key: KeyRecord, endpoint_id: int) -> dict[str, Any]:
    """A new secret takes effect at once: attempts from now on are signed with it."""
    secret = signing.mint()
    sealed = SecretBox.from_settings(ctx.settings).seal(secret)
    async with ctx.db.write() as conn:
        endpoint = await _owned(conn, key, endpoint_id)
        await repo.update(conn, endpoint.id, secret_sealed=sealed)
        updated = await repo.by_id(conn, endpoint.id)
    assert updated is not None
    return view(updated, secret)


async def deliveries(ctx: Context, key: KeyRecord, endpoint_id: int) -> dict[str, Any]:
    """The latest deliveries, newest first, each with its attempts."""
    async with ctx.db.read() as conn:
        endpoint = await _owned(conn, key, endpoint_id)
        rows = await repo.deliveries(conn, endpoint.id)
        tried = await repo.attempts(conn, [r.id for r in rows])
    by_delivery: dict[int, list[dict[str, Any]]] = {}
    for a in tried:
        by_delivery.setdefault(a.delivery_id, []).append(
            {
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "attempted_at": iso_z(as_utc(a.attempted_at)),
            }
        )
    return {
        "data": [
            {
                "id": r.id,
                "event_id": r.event_id,
                "event_type": r.type,
                "status": r.status,
                "attempt_count": r.attempt_count,
                "next_attempt_at": iso_z(as_utc(r.next_attempt_at))
                if r.status == "pending"
                else None,
                "created_at": iso_z(as_utc(r.created_at)),
                "attempts": by_delivery.get(r.id, []),
            }
            for r in rows
        ]
    }


async def retry(ctx: Context, key: KeyRecord, endpoint_id: int, delivery_id: int) -> dict[str, Any]:
    """Offer the delivery again now (same event, same webhook-id) with a fresh schedule."""
    async with ctx.db.write() as conn:
        endpoint = await _owned(conn, key, endpoint_id)
        if not endpoint.enabled:
            raise InvalidRequest("the endpoint is disabled: enable it first")
        if not await repo.reschedule(conn, endpoint.id, delivery_id, ctx.clock.now()):
            raise NotFound(f"no delivery {delivery_id} for this endpoint")
    return {"id": delivery_id, "status": "pending"}
