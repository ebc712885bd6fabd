"""Who pays for a key's calls: the one place that resolves a caller's org and wallet.

A key's org is the org it was created in, else its user's oldest membership. Individual
users pay from their own wallet, enterprise users from that org's wallet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts import repo as users_repo
from bytespike.accounts.repo import User
from bytespike.billing.tables import wallets
from bytespike.errors import PermissionDenied
from bytespike.keys.tables import api_keys
from bytespike.orgs.tables import memberships

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
    """The payer of a key held by `user_id`, or 403 for an enterprise user with no org.

    Two queries, since it runs for every /me request, every console page about a wallet
    and every key the gateway loads: the user, then the org, the paying wallet and the
    user's role there, in one row."""
    user = await users_repo.by_id(conn, user_id)
    assert user is not None  # a key's user is a foreign key
    org_id, wallet_id, role = (await conn.execute(_standing(user, key_org_id))).one()
    if wallet_id is None:
        raise PermissionDenied("enterprise user belongs to no org to bill")
    return Payer(user=user, wallet_id=wallet_id, org_id=org_id, role=role)


def _standing(user: User, key_org_id: int | None) -> sa.Select[Any]:
    """(org id, wallet id, role): the key's org, else the user's oldest (their default
    org); its wallet for an enterprise user, else their own; their role in that org."""
    m, w = memberships.c, wallets.c
    # An alias: inside the role's subquery, SQLAlchemy would correlate a plain `memberships`.
    oldest = memberships.alias("oldest")
    org: sa.ColumnElement[Any] = (
        sa.literal(key_org_id, sa.Integer)
        if key_org_id
        else sa.select(oldest.c.org_id)
        .where(oldest.c.user_id == user.id)
        .order_by(oldest.c.created_at, oldest.c.org_id)
        .limit(1)
        .scalar_subquery()
    )
    owner = w.org_id == org if user.tier == "enterprise" else w.user_id == user.id
    wallet = sa.select(w.id).where(owner).scalar_subquery()
    role = sa.select(m.role).where(m.org_id == org, m.user_id == user.id).scalar_subquery()
    return sa.select(org, wallet, role)


async def of_key(conn: AsyncConnection, key_id: int) -> Payer | None:
    """The payer of a key by id (for events about the key); None if there is no such key."""
    k = api_keys.c
    row = (await conn.execute(sa.select(k.user_id, k.org_id).where(k.id == key_id))).one_or_none()
    if row is None:
        return None
    return await resolve(conn, user_id=row.user_id, key_org_id=row.org_id)
