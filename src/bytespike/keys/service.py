"""Use cases on API keys: mint (shown once), revoke, and resolve a presented key."""

from __future__ import annotations

from typing import Any

from bytespike.accounts import repo as users_repo
from bytespike.accounts.views import usd_or_none
from bytespike.clock import iso_z
from bytespike.context import Context
from bytespike.errors import AuthenticationError, InvalidRequest, NotFound
from bytespike.keys import repo, tokens
from bytespike.keys.repo import KeyRecord
from bytespike.keys.tables import QUOTA_RESETS
from bytespike.orgs import repo as orgs_repo
from bytespike.webhooks import events

MAX_RATE_LIMIT = 1_000_000


async def create(
    ctx: Context,
    *,
    username: str,
    org: str | None = None,
    models: list[tuple[str, int | None]] | None = None,
    rate_limit: int | None = None,
    quota_reset: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Mint a key. `models` None means the whole catalog, uncapped; the secret is returned once."""
    roster = _checked_roster(ctx, models)
    limit = ctx.settings.default_rate_limit if rate_limit is None else rate_limit
    if not 1 <= limit <= MAX_RATE_LIMIT:
        raise InvalidRequest(f"rate limit must be between 1 and {MAX_RATE_LIMIT} per minute")
    if quota_reset is not None and quota_reset not in QUOTA_RESETS:
        raise InvalidRequest(f"quota reset must be one of {', '.join(QUOTA_RESETS)}")
    minted = tokens.mint()
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        user = await users_repo.by_ref(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        org_id = await _org_for(conn, org, user.id)
        no_org = org_id is None and await orgs_repo.oldest_membership(conn, user.id) is None
        if user.tier == "enterprise" and no_org:
            raise InvalidRequest(
                f"user {username!r} is enterprise and in no org: add them to one first"
            )
        key_id = await repo.insert(
            conn,
            user_id=user.id,
            org_id=org_id,
            key_hash=minted.hash,
            prefix=minted.prefix,
            name=name,
            rate_limit=limit,
            quota_reset=quota_reset,
            roster=roster,
            now=now,
        )
        created = {"name": name, "prefix": minted.prefix, "user_id": user.id, "org_id": org_id}
        await events.about_key(conn, key_id, events.KEY_CREATED, created, now=now)
    shown = roster if roster is not None else [(m, None) for m in ctx.catalog.ids]
    return {
        "id": key_id,
        "key": minted.secret,
        "prefix": minted.prefix,
        "name": name,
        "user_id": user.id,
        "username": user.username,
        "org_id": org_id,
        "rate_limit_per_minute": limit,
        "quota_reset": quota_reset,
        "models": [{"id": m, "quota_cap_usd": usd_or_none(cap)} for m, cap in shown],
        "created_at": iso_z(now),
    }


def _checked_roster(
    ctx: Context, models: list[tuple[str, int | None]] | None
) -> list[tuple[str, int | None]] | None:
    if not models:
        return None
    seen: set[str] = set()
    for model, cap in models:
        if model not in ctx.catalog:
            raise InvalidRequest(
                f"unknown model {model!r}; the catalog has: {', '.join(ctx.catalog.ids)}"
            )
        if model in seen:
            raise InvalidRequest(f"model {model!r} is listed twice")
        if cap is not None and cap < 0:
            raise InvalidRequest("a spend cap cannot be negative")
        seen.add(model)
    order = ctx.catalog.ids
    return sorted(models, key=lambda entry: order.index(entry[0]))  # catalog order, as listed


async def _org_for(conn: Any, org: str | None, user_id: int) -> int | None:
    if org is None:
        return None
    found = await orgs_repo.by_ref(conn, org)
    if found is None:
        raise NotFound(f"no org {org!r}")
    if await orgs_repo.role_of(conn, org_id=found.id, user_id=user_id) is None:
        raise InvalidRequest(f"the user is not a member of org {found.name!r}")
    return int(found.id)


async def revoke(ctx: Context, key_id: int) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        if not await repo.exists(conn, key_id):
            raise NotFound(f"no key {key_id}")
        now = ctx.clock.now()
        newly = await repo.revoke(conn, key_id, now)
        if newly:
            await events.about_key(conn, key_id, events.KEY_REVOKED, {}, now=now)
    return {"id": key_id, "revoked": True, "already_revoked": not newly}


def presented_hash(secret: str) -> str:
    """The stored hash a presented credential would have, or 401 if it is not shaped like a
    key: every malformed credential (non-ASCII, truncated, garbage) is refused before hashing."""
    key_hash = tokens.presented_digest(secret)
    if key_hash is None:
        raise AuthenticationError("invalid API key")
    return key_hash


async def resolve(ctx: Context, secret: str) -> KeyRecord:
    """The live record of a presented key, or 401. Read on every request, so a revocation
    made by any process takes effect on the next request everywhere."""
    key_hash = presented_hash(secret)
    async with ctx.db.read() as conn:
        record = await repo.by_hash(conn, key_hash)
    if record is None:
        raise AuthenticationError("invalid API key")
    if record.revoked:
        raise AuthenticationError("this API key has been revoked")
    return record


async def roster(ctx: Context, conn: Any, key: KeyRecord) -> list[tuple[str, int | None]]:
    """The models a key may call with their caps (micros, None: uncapped), in catalog order.

    Listed in catalog order, like every listing (the order given at creation is incidental).
    A model dropped from the catalog can no longer be routed to, so it is not on the roster.
    """
    if key.all_models:
        return [(model_id, None) for model_id in ctx.catalog.ids]
    caps = dict(await repo.roster(conn, key.id))
    return [(m, caps[m]) for m in ctx.catalog.ids if m in caps]
