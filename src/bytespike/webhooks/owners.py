"""What a caller may do with webhook endpoints and notification settings: act for the
wallet their key pays from, and change it only when they manage it (see billing.payer)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import payer as payers
from bytespike.billing.payer import Payer
from bytespike.errors import PermissionDenied
from bytespike.keys.repo import KeyRecord


async def payer(conn: AsyncConnection, key: KeyRecord) -> Payer:
    """The caller's paying wallet, as GET /me/account resolves it."""
    return await payers.resolve(conn, user_id=key.user_id, key_org_id=key.org_id)


async def manager(conn: AsyncConnection, key: KeyRecord) -> Payer:
    """The caller's paying wallet, or 403 when it is an org's and they are not owner/admin."""
    found = await payer(conn, key)
    if not found.may_manage:
        raise PermissionDenied("only the org's owners and admins can manage this")
    return found
