"""Where the console's viewer stands: the keys of theirs a page may name, and the wallet
their /me pages act on.

The services behind /api/v1/me take the caller's key to learn who pays (billing/payer.py):
its user, and the org it was made in (else the user's oldest). A console viewer is a
person, not a key: on the pages about "my wallet" (notifications, usage) they stand in an
org of theirs, or in none, which is the same pair. `seat` makes that pair the record those
services take; its other fields describe no real key and are read by none of them.
"""

from __future__ import annotations

from typing import Any

from bytespike.console.web import Viewer
from bytespike.context import Context
from bytespike.errors import NotFound
from bytespike.keys import service as keys
from bytespike.keys.repo import KeyRecord


def seat(viewer: Viewer, org_id: int | None) -> KeyRecord:
    return KeyRecord(
        id=0,  # no key has it
        user_id=viewer.user_id,
        org_id=org_id,
        rate_limit=1,
        quota_reset=None,
        all_models=False,
        revoked=False,
        org_paused=False,
        version=0,
        suspended=False,
        expires_at=None,
        budgeted=False,
        budget_reset=None,
    )


def chosen_org(viewer: Viewer, wanted: str | None) -> int | None:
    """The org a page's `org` parameter names, if the viewer is in it; else None (the
    viewer's oldest org, as for a key made in none)."""
    if wanted and wanted.isdigit() and viewer.role_in(int(wanted)) is not None:
        return int(wanted)
    return None


async def own_keys(ctx: Context, viewer: Viewer) -> list[dict[str, Any]]:
    """The viewer's live keys (id, name, prefix, status, last use), newest first."""
    return await keys.brief(ctx, viewer.user_id)


def most_recent(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The key used most recently; else the newest."""
    used = [k for k in found if k["last_used_at"]]
    if used:
        return max(used, key=lambda k: (k["last_used_at"], k["id"]))
    return found[0] if found else None


def pick(found: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    """The key `wanted` names among `found` (404 if none of them), or the most recent."""
    if not wanted:
        return most_recent(found)
    for key in found:
        if str(key["id"]) == wanted:
            return key
    raise NotFound(f"you have no live key {wanted[:20]!r}")
