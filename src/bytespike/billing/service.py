"""Use cases on wallets: who pays, top-ups, notification thresholds."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts import repo as users_repo
from bytespike.accounts import views
from bytespike.billing import wallets
from bytespike.context import Context
from bytespike.errors import InvalidRequest, NotFound
from bytespike.money import to_usd_number
from bytespike.orgs import repo as orgs_repo
from bytespike.webhooks import events


async def owner_wallet(
    conn: AsyncConnection, *, username: str | None = None, org: str | None = None
) -> int:
    """The wallet of `--user` or `--org`; enterprise users have none of their own."""
    if (username is None) == (org is None):
        raise InvalidRequest("name exactly one wallet owner: a user or an org")
    if org is not None:
        found_org = await orgs_repo.by_ref(conn, org)
        if found_org is None:
            raise NotFound(f"no org {org!r}")
        wallet_id = await wallets.id_for(conn, org_id=found_org.id)
    else:
        user = await users_repo.by_ref(conn, str(username))
        if user is None:
            raise NotFound(f"no user {username!r}")
        if user.tier == "enterprise":
            raise InvalidRequest(
                f"user {username!r} is enterprise and billed to their org: use --org"
            )
        wallet_id = await wallets.id_for(conn, user_id=user.id)
    if wallet_id is None:  # every user and org gets one at creation
        raise NotFound("wallet not found")
    return wallet_id


async def top_up(
    ctx: Context,
    *,
    amount: int,
    username: str | None = None,
    org: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    if amount <= 0:
        raise InvalidRequest("a top-up must be a positive amount")
    async with ctx.db.write() as conn:
        wallet_id = await owner_wallet(conn, username=username, org=org)
        now = ctx.clock.now()
        result = await wallets.top_up(conn, wallet_id, amount, now=now, reference=reference)
        if result.applied:  # a retried payment already told the owner
            await events.topped_up(conn, wallet_id, amount, reference, now=now)
        after = await wallets.view(conn, wallet_id)
    return {
        "id": result.entry_id,
        "wallet_id": wallet_id,
        "amount_usd": to_usd_number(result.amount),
        "reference": result.reference,
        "applied": result.applied,
        "balance": views.balance(after),
    }


async def set_threshold(
    ctx: Context, *, threshold: int, username: str | None = None, org: str | None = None
) -> dict[str, Any]:
    async with ctx.db.write() as conn:
        wallet_id = await owner_wallet(conn, username=username, org=org)
        await wallets.set_threshold(conn, wallet_id, threshold, now=ctx.clock.now())
        after = await wallets.view(conn, wallet_id)
    return {"id": wallet_id, "wallet_id": wallet_id, **views.balance(after)}
