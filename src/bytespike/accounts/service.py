"""Use cases on users: creating them, and the account view a key's holder sees."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError

from bytespike.accounts import repo, views
from bytespike.accounts.tables import TIERS
from bytespike.billing import payer as payers
from bytespike.billing import quotas, wallets
from bytespike.context import Context
from bytespike.errors import Conflict, InvalidRequest
from bytespike.keys import service as keys
from bytespike.keys.repo import KeyRecord
from bytespike.orgs import repo as orgs_repo

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


async def create_user(ctx: Context, *, username: str, email: str, tier: str) -> dict[str, Any]:
    if not _USERNAME.fullmatch(username):
        raise InvalidRequest("username: 1-64 letters, digits, '.', '_' or '-'")
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidRequest(f"not an email address: {email!r}")
    if tier not in TIERS:
        raise InvalidRequest(f"tier must be one of {', '.join(TIERS)}")
    now = ctx.clock.now()
    try:
        async with ctx.db.write() as conn:
            user_id = await repo.insert(conn, username=username, email=email, tier=tier, now=now)
            if tier == "individual":
                await wallets.create(conn, user_id=user_id, now=now)
            row = await repo.by_id(conn, user_id)
    except IntegrityError as exc:
        raise Conflict(f"username {username!r} is taken") from exc
    assert row is not None
    return views.user(row)


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
