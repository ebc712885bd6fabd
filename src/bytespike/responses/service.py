"""Stored responses (the Responses API's `store`): kept after the call has settled, read back
by `GET /v1/responses/{id}`, deleted by `DELETE`, replayed by `previous_response_id`.

A response belongs to the user whose key made it: any key of that user may read, delete or
continue it; to anyone else it does not exist (404, never 403: ids are not confirmed to
strangers). It is kept for RETENTION (OpenAI's own default): older ones read as not found,
and a background sweep deletes them (responses/sweeper.py).

Failure policy: reading and deleting fail closed (the database's error propagates, a 503
when it is unavailable). Keeping runs after the settlement, so a failure there loses only
the copy, never money or the answer: the caller logs it and goes on.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.context import Context
from bytespike.db.batch import Fused
from bytespike.errors import NotFound
from bytespike.responses import repo
from bytespike.responses.repo import Stored

RETENTION = timedelta(days=30)
JSONObject = dict[str, Any]
# Every id the gateway mints; anything else is no stored response (and never reaches SQL).
_ID = re.compile(r"resp_[0-9a-f]{48}")


def new_id() -> str:
    """A response id in OpenAI's shape: `resp_` and 48 hex digits."""
    return "resp_" + secrets.token_hex(24)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a stored response belongs to and who paid for it."""

    user_id: int
    key_id: int
    wallet_id: int


def row(
    owner: Owner, model: str, input_items: list[Any], response: JSONObject, *, now: datetime
) -> Stored:
    """The stored copy of `response` (its `id` is the row's), with the conversation it
    answered."""
    return Stored(
        id=str(response["id"]),
        user_id=owner.user_id,
        key_id=owner.key_id,
        wallet_id=owner.wallet_id,
        model=model,
        input_items=orjson.dumps(input_items).decode(),
        response=orjson.dumps(response).decode(),
        created_at=now,
    )


async def keep(conn: AsyncConnection, stored: Stored) -> None:
    """Store a response (in the caller's transaction: a batched write on the request path)."""
    await repo.insert(conn, stored)


def fused_keep(stored: Stored) -> Fused[None]:
    """`keep` as one statement, for PostgreSQL: a batch's copies then go as one."""
    return Fused(repo.KEEP, asdict(stored), lambda _done: None, many=repo.KEEP_MANY)


async def get(ctx: Context, user_id: int, response_id: str) -> JSONObject:
    """The stored Response object, or 404."""
    stored = await _stored(ctx, user_id, response_id)
    response: JSONObject = orjson.loads(stored.response)
    return response


async def conversation(ctx: Context, user_id: int, response_id: str) -> list[Any]:
    """Every item of a stored response's conversation, its output last: what a call that
    continues it (`previous_response_id`) replays before its own input. 404 if unknown."""
    stored = await _stored(ctx, user_id, response_id, param="previous_response_id")
    items: list[Any] = orjson.loads(stored.input_items)
    output = orjson.loads(stored.response).get("output") or []
    return items + list(output)


async def delete(ctx: Context, user_id: int, response_id: str) -> None:
    if not _ID.fullmatch(response_id):
        raise _not_found(response_id)
    async with ctx.db.write() as conn:
        since = ctx.clock.now() - RETENTION
        if not await repo.delete(conn, response_id, user_id=user_id, since=since):
            raise _not_found(response_id)


async def _stored(
    ctx: Context, user_id: int, response_id: str, *, param: str | None = None
) -> Stored:
    if not _ID.fullmatch(response_id):
        raise _not_found(response_id, param)
    async with ctx.db.read() as conn:
        since = ctx.clock.now() - RETENTION
        stored = await repo.get(conn, response_id, user_id=user_id, since=since)
    if stored is None:
        raise _not_found(response_id, param)
    return stored


def _not_found(response_id: str, param: str | None = None) -> NotFound:
    shown = response_id if len(response_id) <= 80 else response_id[:80] + "…"
    return NotFound(f"Response with id {shown!r} not found.", param=param)
