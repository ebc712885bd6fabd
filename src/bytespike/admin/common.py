"""What every /api/v1/admin/... module shares: the admin-token dependency (which also names
the actor of the audit log), USD parsing, and ids taken from the path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, Path, Request

from bytespike.api import auth
from bytespike.audit import log as audit
from bytespike.context import Context
from bytespike.db.metadata import MAX_ID, stored_id
from bytespike.errors import InvalidRequest, NotFound
from bytespike.money import MoneyError, parse_usd


async def require_admin(request: Request) -> AsyncIterator[Context]:
    """The context, for a caller with the admin token (api/guard.py has checked it already,
    before the body; checking again costs nothing and keeps the route safe on its own).
    Changes made by the route are audited as the admin API's, under the request's id (the
    one its response and log lines carry: bytespike/request_ids.py)."""
    ctx: Context = request.app.state.ctx
    auth.require_admin_token(request, ctx.settings.admin_token)
    with audit.acting("admin-api", request.scope.get("state", {}).get("request_id")):
        yield ctx


Admin = Depends(require_admin)


def usd(value: Decimal | int | str, field: str, *, allow_zero: bool = True) -> int:
    try:
        micros = parse_usd(value)
    except MoneyError as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc
    if not allow_zero and micros == 0:
        raise InvalidRequest(f"{field}: must be more than zero")
    return micros


def key_id_param(
    key_id: Annotated[str, Path(json_schema_extra={"type": "integer", "maximum": MAX_ID})],
) -> int:
    """Taken as text, so an id no key can have (past INTEGER, not an integer) is 404 like
    any missing key, not a 400 from validation or a database error."""
    found = stored_id(key_id)
    if found is None:
        raise NotFound(f"no key {key_id[:40]}")
    return found
