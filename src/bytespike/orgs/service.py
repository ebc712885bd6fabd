"""Use cases on orgs: create, add members, pause and resume."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from bytespike.accounts import repo as users_repo
from bytespike.accounts import views
from bytespike.billing import wallets
from bytespike.context import Context
from bytespike.errors import Conflict, InvalidRequest, NotFound
from bytespike.orgs import repo
from bytespike.orgs.tables import ROLES
from bytespike.webhooks import events


async def create(ctx: Context, *, name: str) -> dict[str, Any]:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("org name must be 1 to 200 characters")
    if name.startswith((repo.ID_PREFIX, repo.NAME_PREFIX)):
        # Those prefixes say how to read an org reference: a plain ref to such a name would
        # read as one.
        raise InvalidRequest(
            f"an org name cannot start with {repo.ID_PREFIX!r} or {repo.NAME_PREFIX!r}"
        )
    now = ctx.clock.now()
    try:
        async with ctx.db.write() as conn:
            org_id = await repo.insert(conn, name=name, now=now)
            await wallets.create(conn, org_id=org_id, now=now)
            org = await repo.by_id(conn, org_id)
    except IntegrityError as exc:
        raise Conflict(f"an org named {name!r} exists already") from exc
    assert org is not None
    return views.org(org)


async def add_member(ctx: Context, *, org: str, username: str, role: str) -> dict[str, Any]:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    async with ctx.db.write() as conn:
        found = await repo.by_ref(conn, org)
        if found is None:
            raise NotFound(f"no org {org!r}")
        user = await users_repo.by_ref(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        await repo.upsert_member(
            conn, org_id=found.id, user_id=user.id, role=role, now=ctx.clock.now()
        )
    # `id` is the org's, the object this command changes (as for pause and resume): every
    # --json result carries an `id` that scripts can rely on.
    return {
        "id": found.id,
        "org_id": found.id,
        "org": found.name,
        "user_id": user.id,
        "username": user.username,
        "role": role,
    }


async def set_paused(ctx: Context, *, org: str, paused: bool) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        found = await repo.by_ref(conn, org)
        if found is None:
            raise NotFound(f"no org {org!r}")
        await repo.set_paused(conn, found.id, paused)
        if paused and not found.paused:  # pausing a paused org changes nothing to report
            await events.org_paused(conn, found.id, now=ctx.clock.now())
        updated = await repo.by_id(conn, found.id)
    assert updated is not None
    return views.org(updated)
