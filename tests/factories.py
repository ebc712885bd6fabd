"""Factories: make users, orgs, keys and money through the real services."""

from __future__ import annotations

from typing import Any

from bytespike.accounts import service as accounts
from bytespike.billing import service as billing
from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.money import parse_usd
from bytespike.orgs import service as orgs


async def make_user(
    ctx: Context, username: str = "ada", *, tier: str = "individual", email: str | None = None
) -> dict[str, Any]:
    return await accounts.create_user(
        ctx, username=username, email=email or f"{username}@dosia.ai", tier=tier
    )


async def make_org(ctx: Context, name: str = "Dosia AI") -> dict[str, Any]:
    return await orgs.create(ctx, name=name)


async def add_member(ctx: Context, org: str, username: str, role: str = "member") -> None:
    await orgs.add_member(ctx, org=org, username=username, role=role)


async def make_key(ctx: Context, username: str = "ada", **options: Any) -> dict[str, Any]:
    return await keys.create(ctx, username=username, **options)


async def top_up(
    ctx: Context,
    usd: str,
    *,
    user: str | None = None,
    org: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    return await billing.top_up(
        ctx, amount=parse_usd(usd), username=user, org=org, reference=reference
    )


async def wallet_of(ctx: Context, *, user: str | None = None, org: str | None = None) -> int:
    async with ctx.db.read() as conn:
        return await billing.owner_wallet(conn, username=user, org=org)
