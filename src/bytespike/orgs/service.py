"""Use cases on orgs: create, list and show, rename, add and remove members, pause and
resume. Every change is audited in its own transaction; an org always keeps an owner once
it has one (the last owner can be neither removed nor demoted)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike import pages
from bytespike.accounts import repo as users_repo
from bytespike.accounts import views
from bytespike.accounts.repo import User
from bytespike.audit import log as audit
from bytespike.billing import wallets
from bytespike.clock import as_utc, iso_z
from bytespike.context import Context
from bytespike.errors import Conflict, InvalidRequest, NotFound
from bytespike.keys import repo as keys_repo
from bytespike.orgs import repo
from bytespike.orgs.repo import Org
from bytespike.orgs.tables import ROLES
from bytespike.webhooks import events


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("org name must be 1 to 200 characters")
    if name.startswith((repo.ID_PREFIX, repo.NAME_PREFIX)):
        # Those prefixes say how to read an org reference: a plain ref to such a name would
        # read as one.
        raise InvalidRequest(
            f"an org name cannot start with {repo.ID_PREFIX!r} or {repo.NAME_PREFIX!r}"
        )
    return name


async def create(ctx: Context, *, name: str) -> dict[str, Any]:
    name = _checked_name(name)
    now = ctx.clock.now()
    try:
        async with ctx.db.write() as conn:
            org_id = await repo.insert(conn, name=name, now=now)
            await wallets.create(conn, org_id=org_id, now=now)
            org = await repo.by_id(conn, org_id)
            assert org is not None
            await audit.record(conn, "org.create", "org", org_id, now=now, after=views.org(org))
    except IntegrityError as exc:
        raise Conflict(f"an org named {name!r} exists already") from exc
    return views.org(org)


async def list_orgs(
    ctx: Context, *, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    size, after = pages.checked_limit(limit), pages.parse_cursor(cursor)
    async with ctx.db.read() as conn:
        rows = await repo.page(conn, after=after, limit=size + 1)

    def view(row: Any) -> dict[str, Any]:
        return {**views.org(row), "members": int(row.members)}

    return pages.page(rows, size, row_id=lambda row: int(row.id), view=view)


async def show(ctx: Context, ref: str) -> dict[str, Any]:
    """An org with its members and roles, and its wallet's balance."""
    async with ctx.db.read() as conn:
        org = await repo.required(conn, ref)
        members = await repo.members(conn, org.id)
        wallet_id = await wallets.id_for(conn, org_id=org.id)
        assert wallet_id is not None  # every org gets one at creation
        wallet = await wallets.view(conn, wallet_id)
    return {
        **views.org(org),
        "members": [
            {
                "id": m.id,
                "username": m.username,
                "role": m.role,
                "joined_at": iso_z(as_utc(m.created_at)),
            }
            for m in members
        ],
        "wallet": views.wallet(wallet),
    }


async def rename(ctx: Context, *, org: str, name: str) -> dict[str, Any]:
    name = _checked_name(name)
    now = ctx.clock.now()
    try:
        async with ctx.db.write() as conn:
            current = await repo.required(conn, org)
            if name != current.name:
                await repo.rename(conn, current.id, name)
                await audit.record(
                    conn,
                    "org.rename",
                    "org",
                    current.id,
                    now=now,
                    before={"name": current.name},
                    after={"name": name},
                )
            renamed = await repo.by_id(conn, current.id)
    except IntegrityError as exc:
        raise Conflict(f"an org named {name!r} exists already") from exc
    assert renamed is not None
    return views.org(renamed)


def _membership(org: Org, user: User, role: str) -> dict[str, Any]:
    # `id` is the org's, the object these commands change (as for pause and resume): every
    # --json result carries an `id` that scripts can rely on.
    return {
        "id": org.id,
        "org_id": org.id,
        "org": org.name,
        "user_id": user.id,
        "username": user.username,
        "role": role,
    }


async def add_member(ctx: Context, *, org: str, username: str, role: str) -> dict[str, Any]:
    """Add a user to an org, or change their role there (never demoting its last owner)."""
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        found_org = await repo.required(conn, org)
        user = await users_repo.required(conn, username)
        await repo.lock(conn, found_org.id)
        before = await repo.role_of(conn, org_id=found_org.id, user_id=user.id)
        if before == "owner" and role != "owner":
            await _keep_an_owner(conn, found_org, user, "demoted")
        if before != role:
            await repo.upsert_member(conn, org_id=found_org.id, user_id=user.id, role=role, now=now)
            await audit.record(
                conn,
                "org.add_member" if before is None else "org.change_role",
                "org",
                found_org.id,
                now=now,
                before=None if before is None else _membership(found_org, user, before),
                after=_membership(found_org, user, role),
            )
    return _membership(found_org, user, role)


async def remove_member(ctx: Context, *, org: str, username: str) -> dict[str, Any]:
    """Take a user out of an org (never its last owner). Their keys created in the org are
    revoked (401 from the next request on, for good: a member who comes back gets new
    keys); their keys created in no org are read anew, as the org such a key bills (the
    user's oldest) may have been this one."""
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        found_org = await repo.required(conn, org)
        user = await users_repo.required(conn, username)
        await repo.lock(conn, found_org.id)
        role = await repo.role_of(conn, org_id=found_org.id, user_id=user.id)
        if role is None:
            raise NotFound(f"user {user.username!r} is not a member of org {found_org.name!r}")
        if role == "owner":
            await _keep_an_owner(conn, found_org, user, "removed")
        await repo.delete_member(conn, org_id=found_org.id, user_id=user.id)
        revoked = await keys_repo.revoke_in_org(conn, user_id=user.id, org_id=found_org.id, now=now)
        for key_id in revoked:
            await events.about_key(conn, key_id, events.KEY_REVOKED, {}, now=now)
            await audit.record(
                conn, "key.revoke", "key", key_id, now=now, after={"reason": "member removed"}
            )
        await keys_repo.bump_versions(
            conn, user_id=user.id, org_id=found_org.id, without_org=True, now=now
        )
        await audit.record(
            conn,
            "org.remove_member",
            "org",
            found_org.id,
            now=now,
            before=_membership(found_org, user, role),
        )
    return {**_membership(found_org, user, role), "removed": True, "revoked_key_ids": revoked}


async def _keep_an_owner(conn: AsyncConnection, org: Org, user: User, what: str) -> None:
    if await repo.owners(conn, org.id) <= 1:
        raise InvalidRequest(
            f"{user.username!r} is the last owner of org {org.name!r} and cannot be {what}: "
            "make another member owner first",
            code="last_owner",
        )


async def set_paused(ctx: Context, *, org: str, paused: bool) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        current = await repo.required(conn, org)
        await repo.set_paused(conn, current.id, paused)
        updated = await repo.by_id(conn, current.id)
        assert updated is not None
        if paused != bool(current.paused):  # pausing a paused org changes nothing to report
            if paused:
                await events.org_paused(conn, current.id, now=now)
            await audit.record(
                conn,
                "org.pause" if paused else "org.resume",
                "org",
                current.id,
                now=now,
                before={"paused": bool(current.paused)},
                after={"paused": paused},
            )
    return views.org(updated)
