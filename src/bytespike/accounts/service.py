"""Use cases on users: creating, listing, showing, correcting and suspending them, and the
account view a key's holder sees. Every change is audited in its own transaction."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike import pages
from bytespike.accounts import repo, views
from bytespike.accounts.tables import TIERS
from bytespike.audit import log as audit
from bytespike.billing import payer as payers
from bytespike.billing import quotas, wallets
from bytespike.clock import as_utc, iso_z
from bytespike.console import repo as console_repo
from bytespike.context import Context
from bytespike.errors import Conflict, InvalidRequest
from bytespike.keys import repo as keys_repo
from bytespike.keys import service as keys
from bytespike.keys.repo import KeyRecord
from bytespike.orgs import repo as orgs_repo

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


async def create_user(ctx: Context, *, username: str, email: str, tier: str) -> dict[str, Any]:
    if not _USERNAME.fullmatch(username):
        raise InvalidRequest("username: 1-64 letters, digits, '.', '_' or '-'")
    _check_email(email)
    _check_tier(tier)
    now = ctx.clock.now()
    try:
        async with ctx.db.write() as conn:
            user_id = await repo.insert(conn, username=username, email=email, tier=tier, now=now)
            if tier == "individual":
                await wallets.create(conn, user_id=user_id, now=now)
            row = await repo.by_id(conn, user_id)
            assert row is not None
            await audit.record(conn, "user.create", "user", user_id, now=now, after=views.user(row))
    except IntegrityError as exc:
        raise Conflict(f"username {username!r} is taken") from exc
    return views.user(row)


def _check_email(email: str) -> None:
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidRequest(f"not an email address: {email!r}")


def _check_tier(tier: str) -> None:
    if tier not in TIERS:
        raise InvalidRequest(f"tier must be one of {', '.join(TIERS)}")


async def list_users(
    ctx: Context, *, org: str | None = None, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """A page of users by id; with `org`, only its members, each with their role there."""
    size, after = pages.checked_limit(limit), pages.parse_cursor(cursor)
    async with ctx.db.read() as conn:
        org_id = None
        if org is not None:
            found_org = await orgs_repo.required(conn, org)
            org_id = found_org.id
        rows = await repo.page(conn, after=after, limit=size + 1, org_id=org_id)

    def view(row: Any) -> dict[str, Any]:
        shown = views.user_status(row)
        return shown if org_id is None else {**shown, "role": row.role}

    return pages.page(rows, size, row_id=lambda row: int(row.id), view=view)


async def show_user(ctx: Context, ref: str) -> dict[str, Any]:
    """Everything an operator asks about a user: status, orgs, own wallet, keys."""
    async with ctx.db.read() as conn:
        user = await repo.required(conn, ref)
        orgs = await orgs_repo.of_user(conn, user.id)
        wallet_id = None
        if user.tier == "individual":  # an enterprise user's leftover wallet pays for nothing
            wallet_id = await wallets.id_for(conn, user_id=user.id)
        wallet = None if wallet_id is None else await wallets.view(conn, wallet_id)
        key_counts = await keys_repo.counts_of_user(conn, user.id, ctx.clock.now())
    return {
        **views.user_status(user),
        "memberships": [
            {"id": o.id, "name": o.name, "role": o.role, "joined_at": iso_z(as_utc(o.created_at))}
            for o in orgs
        ],
        "wallet": None if wallet is None else views.wallet(wallet),
        "keys": key_counts,
    }


async def account(ctx: Context, key: KeyRecord) -> dict[str, Any]:
    """GET /api/v1/me/account: read-only, so the call is free by construction."""
    now = ctx.clock.now()
    async with ctx.db.read() as conn:
        payer = await payers.resolve(conn, user_id=key.user_id, key_org_id=key.org_id)
        wallet = await wallets.view(conn, payer.wallet_id)
        used = await quotas.used_by_model(conn, key.id, quotas.period_start(key.quota_reset, now))
        roster = await keys.roster(ctx, conn, key)
        org = None if payer.org_id is None else await orgs_repo.by_id(conn, payer.org_id)
    return {
        "user": views.user(payer.user),
        "balance": views.balance(wallet),
        "allowed_models": [
            {
                "id": model,
                "quota_used_usd": views.usd_or_none(used.get(model, 0)),
                "quota_cap_usd": views.usd_or_none(cap),
            }
            for model, cap in roster
        ],
        "org": None if org is None else {"id": org.id, "name": org.name, "role": payer.role},
    }


async def update_user(
    ctx: Context, ref: str, *, email: str | None = None, tier: str | None = None
) -> dict[str, Any]:
    """Correct a user's email or move them between tiers. Enterprise needs an org to bill;
    back to individual, they pay from their own wallet again (made now if they never had
    one). An individual's wallet stays when they turn enterprise, its money theirs."""
    if email is None and tier is None:
        raise InvalidRequest("nothing to change: give an email or a tier")
    if email is not None:
        _check_email(email)
    if tier is not None:
        _check_tier(tier)
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        user = await repo.locked(conn, (await repo.required(conn, ref)).id)  # one change at a time
        wanted = {"email": email, "tier": tier}
        changed = {k: v for k, v in wanted.items() if v is not None and v != getattr(user, k)}
        in_no_org = await orgs_repo.oldest_membership(conn, user.id) is None
        if changed.get("tier") == "enterprise" and in_no_org:
            raise InvalidRequest(
                f"user {user.username!r} is in no org to bill: add them to one before making "
                "them enterprise"
            )
        if changed:
            await repo.update(conn, user.id, **changed)
            if "tier" in changed:
                await _payer_changed(conn, user.id, changed["tier"], now=now)
            before = {k: getattr(user, k) for k in changed}
            await audit.record(
                conn, "user.update", "user", user.id, now=now, before=before, after=changed
            )
        updated = await repo.by_id(conn, user.id)
    assert updated is not None
    return views.user_status(updated)


async def _payer_changed(conn: AsyncConnection, user_id: int, tier: str, *, now: datetime) -> None:
    """Another wallet pays for the user's calls from now on: an individual needs one of their
    own, and every process that cached which wallet pays must read their keys anew."""
    if tier == "individual" and await wallets.id_for(conn, user_id=user_id) is None:
        await wallets.create(conn, user_id=user_id, now=now)
    await keys_repo.bump_versions(conn, user_id=user_id, now=now)


async def set_suspended(ctx: Context, ref: str, *, suspended: bool) -> dict[str, Any]:
    """Suspend or unsuspend a user: their keys are refused (403) from the next request on,
    on every server, as each key's version moves, and their console sessions end. Doing it
    twice changes nothing."""
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        user = await repo.required(conn, ref)
        changed = await repo.set_suspended(conn, user.id, now if suspended else None)
        updated = await repo.by_id(conn, user.id)
        assert updated is not None
        if changed:
            await keys_repo.bump_versions(conn, user_id=user.id, now=now)
            if suspended:  # signed out of the console too
                await console_repo.delete_sessions_of(conn, user.id)
            await audit.record(
                conn,
                "user.suspend" if suspended else "user.unsuspend",
                "user",
                user.id,
                now=now,
                before={"suspended_at": views.user_status(user)["suspended_at"]},
                after={"suspended_at": views.user_status(updated)["suspended_at"]},
            )
    flag = "already_suspended" if suspended else "already_active"
    return {**views.user_status(updated), flag: not changed}
