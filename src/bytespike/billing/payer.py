"""Who pays for a key's calls: the one place that resolves a caller's org and wallet.

A key's org is the org it was created in, else its user's oldest membership. Individual
users pay from their own wallet, enterprise users from that org's wallet.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts import repo as users_repo
from bytespike.accounts.repo import User
from bytespike.billing import wallets
from bytespike.errors import PermissionDenied
from bytespike.keys.tables import api_keys
from bytespike.orgs import repo as orgs_repo

MANAGING_ROLES = ("owner", "admin")


@dataclass(frozen=True, slots=True)
class Payer:
    user: User
    wallet_id: int
    org_id: int | None  # the caller's org, whoever pays
    role: str | None  # the caller's role in that org

    @property
    def billed_to_org(self) -> bool:
        return bool(self.user.tier == "enterprise")

    @property
    def may_manage(self) -> bool:
        """Individuals manage their own wallet; an org's needs its owner or an admin."""
        return not self.billed_to_org or self.role in MANAGING_ROLES


async def resolve(conn: AsyncConnection, *, user_id: int, key_org_id: int | None) -> Payer:
    """The payer of a key held by `user_id`, or 403 for an enterprise user with no org."""
    user = await users_repo.by_id(conn, user_id)
    assert user is not None  # a key's user is a foreign key
    org_id = key_org_id or await orgs_repo.oldest_membership(conn, user.id)
    if user.tier == "enterprise":
        wallet_id = None if org_id is None else await wallets.id_for(conn, org_id=org_id)
    else:
        wallet_id = await wallets.id_for(conn, user_id=user.id)
    if wallet_id is None:
        raise PermissionDenied("enterprise user belongs to no org to bill")
    role = None
    if org_id is not None:
        role = await orgs_repo.role_of(conn, org_id=org_id, user_id=user.id)
    return Payer(user=user, wallet_id=wallet_id, org_id=org_id, role=role)


async def of_key(conn: AsyncConnection, key_id: int) -> Payer | None:
    """The payer of a key by id (for events about the key); None if there is no such key."""
    k = api_keys.c
    row = (await conn.execute(sa.select(k.user_id, k.org_id).where(k.id == key_id))).one_or_none()
    if row is None:
        return None
    return await resolve(conn, user_id=row.user_id, key_org_id=row.org_id)
