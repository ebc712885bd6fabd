"""Who a caller acts for: the wallet their key pays from, and whether they may manage it.

Individuals manage their own wallet. Enterprise users act for their org's wallet, which
only the org's owners and admins may change (members may read notification settings).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts import repo as users_repo
from bytespike.billing.service import paying_wallet
from bytespike.errors import PermissionDenied
from bytespike.keys.repo import KeyRecord
from bytespike.keys.tables import api_keys
from bytespike.orgs import repo as orgs_repo

MANAGING_ROLES = ("owner", "admin")


@dataclass(frozen=True, slots=True)
class Payer:
    wallet_id: int
    org_id: int | None  # set when the wallet is an org's
    role: str | None  # the caller's role in that org

    @property
    def may_manage(self) -> bool:
        return self.org_id is None or self.role in MANAGING_ROLES


async def payer(conn: AsyncConnection, key: KeyRecord) -> Payer:
    """The caller's paying wallet, as GET /me/account resolves it."""
    user = await users_repo.by_id(conn, key.user_id)
    assert user is not None  # a key's user is a foreign key
    org_id = key.org_id or await orgs_repo.oldest_membership(conn, user.id)
    wallet_id = await paying_wallet(conn, user_id=user.id, tier=user.tier, org_id=org_id)
    if wallet_id is None:
        raise PermissionDenied("enterprise user belongs to no org to bill")
    if user.tier != "enterprise":
        return Payer(wallet_id=wallet_id, org_id=None, role=None)
    assert org_id is not None
    role = await orgs_repo.role_of(conn, org_id=org_id, user_id=user.id)
    return Payer(wallet_id=wallet_id, org_id=org_id, role=role)


async def manager(conn: AsyncConnection, key: KeyRecord) -> Payer:
    """The caller's paying wallet, or 403 when it is an org's and they are not owner/admin."""
    found = await payer(conn, key)
    if not found.may_manage:
        raise PermissionDenied("only the org's owners and admins can manage this")
    return found


async def wallet_of_key(conn: AsyncConnection, key_id: int) -> int | None:
    """The wallet a key's spending is billed to (for events about the key)."""
    k = api_keys.c
    row = (await conn.execute(sa.select(k.user_id, k.org_id).where(k.id == key_id))).one_or_none()
    if row is None:
        return None
    user = await users_repo.by_id(conn, row.user_id)
    assert user is not None
    org_id = row.org_id or await orgs_repo.oldest_membership(conn, user.id)
    return await paying_wallet(conn, user_id=user.id, tier=user.tier, org_id=org_id)
