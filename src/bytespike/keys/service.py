"""Use cases on API keys: mint (shown once), revoke, and resolve a presented key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bytespike import pages
from bytespike.accounts import repo as users_repo
from bytespike.accounts.views import usd_or_none
from bytespike.audit import log as audit
from bytespike.billing import quotas
from bytespike.clock import as_utc, iso_z
from bytespike.context import Context
from bytespike.errors import AuthenticationError, InvalidRequest, NotFound, PermissionDenied
from bytespike.keys import repo, tokens, views
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
    limit = _checked_rate(ctx.settings.default_rate_limit if rate_limit is None else rate_limit)
    if quota_reset is not None and quota_reset not in QUOTA_RESETS:
        raise InvalidRequest(f"quota reset must be one of {', '.join(QUOTA_RESETS)}")
    minted = tokens.mint()
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        user = await users_repo.required(conn, username)
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
        await audit.record(conn, "key.create", "key", key_id, now=now, after=created)
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
    found = await orgs_repo.required(conn, org)
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
            await audit.record(
                conn, "key.revoke", "key", key_id, now=now, after={"revoked_at": iso_z(now)}
            )
    return {"id": key_id, "revoked": True, "already_revoked": not newly}


def presented_hash(secret: str) -> str:
    """The stored hash a presented credential would have, or 401 if it is not shaped like a
    key: every malformed credential (non-ASCII, truncated, garbage) is refused before hashing."""
    key_hash = tokens.presented_digest(secret)
    if key_hash is None:
        raise AuthenticationError("invalid API key")
    return key_hash


async def resolve(ctx: Context, secret: str) -> KeyRecord:
    """The live record of a presented key, or 401 (403 for a suspended user's). Read on
    every request, so a change made by any process takes effect on the next request
    everywhere."""
    return await resolve_digest(ctx, presented_hash(secret))


async def resolve_digest(ctx: Context, key_hash: str) -> KeyRecord:
    """`resolve`, for a presented key already hashed."""
    async with ctx.db.read() as conn:
        record = await repo.by_hash(conn, key_hash)
    if record is None:
        raise AuthenticationError("invalid API key")
    check_standing(record, ctx.clock.now())
    return record


async def record(ctx: Context, key_id: int) -> KeyRecord:
    """A key's record by id (what its secret would resolve to), or 404."""
    async with ctx.db.read() as conn:
        found = await repo.by_id(conn, key_id)
    if found is None:
        raise NotFound(f"no key {key_id}")
    return found


async def roster(ctx: Context, conn: Any, key: KeyRecord) -> list[tuple[str, int | None]]:
    """The models a key may call with their caps (micros, None: uncapped), in catalog order.

    Listed in catalog order, like every listing (the order given at creation is incidental).
    A model dropped from the catalog can no longer be routed to, so it is not on the roster.
    """
    if key.all_models:
        return [(model_id, None) for model_id in ctx.catalog.ids]
    caps = dict(await repo.roster(conn, key.id))
    return [(m, caps[m]) for m in ctx.catalog.ids if m in caps]


def check_standing(record: KeyRecord, now: datetime) -> None:
    """401 for a key that is revoked, expired or rolled past its grace; 403 if its user is
    suspended. Checked on every request, cached or not."""
    if record.revoked:
        raise AuthenticationError("this API key has been revoked")
    if record.expires_at is not None and now >= as_utc(record.expires_at):
        if record.previous:
            raise AuthenticationError("this API key was rolled: use its new secret")
        raise AuthenticationError("this API key has expired")
    if record.suspended:
        raise PermissionDenied("this key's user is suspended", code="user_suspended")


async def _found(conn: Any, key_id: int) -> repo.KeyRow:
    row = await repo.row(conn, key_id)
    if row is None:
        raise NotFound(f"no key {key_id}")
    return row


async def _views(ctx: Context, conn: Any, rows: list[repo.KeyRow]) -> list[dict[str, Any]]:
    """The keys as shown: roster with this period's spend per model, budget, lifetime."""
    now = ctx.clock.now()
    ids = [row.id for row in rows]
    explicit = await repo.rosters(conn, ids) if ids else {}
    totals = await repo.usage_totals(conn, ids) if ids else {}
    # One query per distinct quota period (at most four), not one per key: a page of keys
    # costs the same few queries however many keys it holds.
    periods: dict[date | None, list[int]] = {}
    for row in rows:
        period = quotas.period_start(row.quota_reset, now)
        periods.setdefault(None if period is None else period.date(), []).append(row.id)
    spends: dict[int, dict[str, int]] = {}
    for since, key_ids in periods.items():
        spends |= await repo.spend_by_key_and_model(conn, key_ids, since)
    shown = []
    for row in rows:
        caps = dict(explicit.get(row.id, []))
        roster: list[tuple[str, int | None]] = [
            (m, caps.get(m)) for m in ctx.catalog.ids if row.all_models or m in caps
        ]
        spend = spends.get(row.id, {})
        lifetime, last_used = totals.get(row.id, (0, None))
        shown.append(
            views.key(
                row, roster=roster, spend=spend, lifetime=lifetime, last_used=last_used, now=now
            )
        )
    return shown


async def brief(ctx: Context, user_id: int) -> list[dict[str, Any]]:
    """A user's live keys, newest first, for choosing one: id, name, prefix, status and last
    use only (no roster or spend, so it costs two queries however many keys there are)."""
    now = ctx.clock.now()
    async with ctx.db.read() as conn:
        rows = await repo.rows(
            conn, user_id=user_id, org_id=None, revoked=False, after_id=None, limit=1000
        )
        totals = await repo.usage_totals(conn, [row.id for row in rows]) if rows else {}
    return [
        {
            "id": row.id,
            "name": row.name,
            "prefix": row.prefix,
            "status": views.status(row, now),
            "last_used_at": views.time(totals.get(row.id, (0, None))[1]),
        }
        for row in reversed(rows)
    ]


async def show(ctx: Context, key_id: int) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        (shown,) = await _views(ctx, conn, [await _found(conn, key_id)])
    return shown


async def list_keys(
    ctx: Context,
    *,
    user: str | None = None,
    org: str | None = None,
    revoked: bool = False,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Keys by id, live ones (with `revoked`, revoked ones too), of a user or an org."""
    size = pages.checked_limit(limit)
    after = pages.parse_cursor(cursor)
    async with ctx.db.read() as conn:
        user_id = None if user is None else (await users_repo.required(conn, user)).id
        org_id = None
        if org is not None:
            found = await orgs_repo.required(conn, org)
            org_id = found.id
        rows = await repo.rows(
            conn, user_id=user_id, org_id=org_id, revoked=revoked, after_id=after, limit=size + 1
        )
        shown = await _views(ctx, conn, rows[:size])
    return {"data": shown, "next_cursor": str(rows[size - 1].id) if len(rows) > size else None}


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """What `keys update` changes; None leaves a setting as it is. CLEAR removes one."""

    name: str | None = None
    models: list[tuple[str, int | None]] | None = None  # add, or set the cap of
    remove_models: list[str] | None = None
    rate_limit: int | None = None
    quota_reset: str | None = None  # a reset, or CLEAR
    budget: int | str | None = None  # micros, or CLEAR
    budget_reset: str | None = None  # a reset, or CLEAR
    expires_at: datetime | str | None = None  # a time, or CLEAR


CLEAR = "none"


async def update(ctx: Context, key_id: int, changes: KeyChanges) -> dict[str, Any]:
    """Change a key's settings; every server applies them from its next request on."""
    values = _checked_values(changes)
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        row = await _found(conn, key_id)
        if row.revoked_at is not None:
            raise InvalidRequest(f"key {key_id} is revoked: it cannot be changed")
        (before,) = await _views(ctx, conn, [row])
        if changes.models or changes.remove_models:
            current = await _roster_of(ctx, conn, row)
            await repo.replace_roster(conn, key_id, _new_roster(ctx, current, changes))
        await repo.update(conn, key_id, values, now)
        (after,) = await _views(ctx, conn, [await _found(conn, key_id)])
        await audit.record(conn, "key.update", "key", key_id, now=now, before=before, after=after)
    return after


def _checked_values(changes: KeyChanges) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if changes.name is not None:
        if len(changes.name) > 200:
            raise InvalidRequest("a key's name is at most 200 characters")
        values["name"] = changes.name or None
    if changes.rate_limit is not None:
        values["rate_limit"] = _checked_rate(changes.rate_limit)
    if changes.quota_reset is not None:
        values["quota_reset"] = _checked_reset(changes.quota_reset, "quota reset")
    if changes.budget_reset is not None:
        values["budget_reset"] = _checked_reset(changes.budget_reset, "budget reset")
    if changes.budget is not None:
        if changes.budget == CLEAR:
            values.update(budget_micros=None, budget_held_micros=0)
        elif isinstance(changes.budget, int) and changes.budget >= 0:
            values["budget_micros"] = changes.budget
        else:
            raise InvalidRequest("a budget is an amount in USD of zero or more, or none")
    if changes.expires_at is not None:
        if changes.expires_at == CLEAR:
            values["expires_at"] = None
        elif isinstance(changes.expires_at, datetime):
            values["expires_at"] = changes.expires_at
        else:
            values["expires_at"] = parse_instant(changes.expires_at)
    return values


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset (2026-12-31T23:59:59Z); a bare date is its UTC
    midnight. A time without an offset is refused rather than guessed."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"not an ISO 8601 time: {text[:40]!r} (e.g. 2026-12-31T23:59:59Z)"
        ) from None
    if value.tzinfo is None:
        if len(text) == 10:  # a date
            return value.replace(tzinfo=UTC)
        raise InvalidRequest(f"{text[:40]!r} has no UTC offset: add Z or +HH:MM")
    return as_utc(value)


def _checked_rate(limit: int) -> int:
    if not 1 <= limit <= MAX_RATE_LIMIT:
        raise InvalidRequest(f"rate limit must be between 1 and {MAX_RATE_LIMIT} per minute")
    return limit


def _checked_reset(reset: str, what: str) -> str | None:
    if reset == CLEAR:
        return None
    if reset not in QUOTA_RESETS:
        raise InvalidRequest(f"{what} must be one of {', '.join(QUOTA_RESETS)} or none")
    return reset


async def _roster_of(ctx: Context, conn: Any, row: repo.KeyRow) -> list[tuple[str, int | None]]:
    if row.all_models:  # made explicit: from now on the key has exactly these models
        return [(model, None) for model in ctx.catalog.ids]
    return (await repo.rosters(conn, [row.id])).get(row.id, [])


def _new_roster(
    ctx: Context, current: list[tuple[str, int | None]], changes: KeyChanges
) -> list[tuple[str, int | None]]:
    roster = dict(current)
    for model in changes.remove_models or []:
        if model not in roster:
            raise InvalidRequest(f"the key has no model {model!r} to remove")
        del roster[model]
    for model, cap in _checked_roster(ctx, changes.models) or []:
        roster[model] = cap
    if not roster:
        raise InvalidRequest("a key needs at least one model")
    order = ctx.catalog.ids
    ranked = sorted(roster.items(), key=lambda e: order.index(e[0]) if e[0] in order else 0)
    return ranked


MAX_GRACE_SECONDS = 30 * 24 * 3600


async def roll(ctx: Context, key_id: int, *, grace_seconds: int = 0) -> dict[str, Any]:
    """A new secret for the same key (id, settings, spend); printed once. The old one keeps
    working for `grace_seconds`, then gets 401."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidRequest(f"grace seconds must be between 0 and {MAX_GRACE_SECONDS}")
    minted = tokens.mint()
    now = ctx.clock.now()
    grace_until = now + timedelta(seconds=grace_seconds) if grace_seconds else None
    async with ctx.db.write() as conn:
        row = await _found(conn, key_id)
        if row.revoked_at is not None:
            raise InvalidRequest(f"key {key_id} is revoked: it cannot be rolled")
        await repo.roll(
            conn, key_id, new_hash=minted.hash, prefix=minted.prefix, grace_until=grace_until,
            now=now,
        )  # fmt: skip
        await audit.record(
            conn,
            "key.roll",
            "key",
            key_id,
            now=now,
            before={"prefix": row.prefix},
            after={"prefix": minted.prefix, "previous_valid_until": grace_until},
        )
    return {
        "id": key_id,
        "key": minted.secret,
        "prefix": minted.prefix,
        "previous_prefix": row.prefix,
        "previous_valid_until": None if grace_until is None else iso_z(grace_until),
    }


async def holder_view(ctx: Context, key: KeyRecord) -> dict[str, Any]:
    """GET /api/v1/me/key: the calling key, as an operator sees it."""
    return await show(ctx, key.id)
