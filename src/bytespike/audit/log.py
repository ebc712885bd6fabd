"""The audit log: who changed what, written in the same transaction as the change.

Every service that changes something on an operator's behalf calls `record` with the
target's fields before and after. Who is acting comes from the surface that called the
service (the CLI, the admin API, the console), which sets it once per command or request
with `acting`: a context variable, so the services' signatures stay about their own work.
Secrets never enter: fields that name one are dropped before anything is written.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.audit.tables import audit_log

# Never written, whatever a caller passes: the fields that carry a secret or its hash.
SECRET_FIELDS = frozenset(
    {"key", "secret", "key_hash", "previous_key_hash", "password", "password_hash", "token"}
)


@dataclass(frozen=True, slots=True)
class Actor:
    name: str  # "cli:<os user>", "admin-api", "console:<username>", "system"
    request_id: str


_actor: ContextVar[Actor | None] = ContextVar("bytespike_audit_actor", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def acting(name: str, request_id: str | None = None) -> Iterator[Actor]:
    """Changes made inside are recorded as `name`'s, under `request_id` (a new one if None)."""
    actor = Actor(name, request_id or new_request_id())
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def current() -> Actor:
    """Who is acting; "system" outside any surface (a test calling a service directly)."""
    return _actor.get() or Actor("system", new_request_id())


def _scrubbed(fields: Mapping[str, Any] | None) -> str | None:
    if fields is None:
        return None
    kept = {name: value for name, value in fields.items() if name not in SECRET_FIELDS}
    return orjson.dumps(kept, default=str).decode()


async def record(
    conn: AsyncConnection,
    action: str,
    target_type: str,
    target_id: int | str,
    *,
    now: datetime,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Append one entry for a change made in `conn`'s transaction."""
    actor = current()
    await conn.execute(
        sa.insert(audit_log).values(
            created_at=now,
            actor=actor.name[:200],
            action=action,
            target_type=target_type,
            target_id=str(target_id)[:200],
            before=_scrubbed(before),
            after=_scrubbed(after),
            request_id=actor.request_id[:64],
        )
    )
