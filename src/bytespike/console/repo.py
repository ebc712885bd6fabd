"""SQL for the console: credentials on `users`, sessions, invites and failed sign-ins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.accounts.tables import users
from bytespike.console.tables import console_invites, console_login_failures, console_sessions


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: int
    username: str
    password_hash: str | None
    suspended: bool


@dataclass(frozen=True, slots=True)
class Session:
    """A live session and who it belongs to, read in one query on every console request."""

    id: str
    user_id: int
    username: str
    tier: str
    is_operator: bool
    suspended: bool
    csrf_token: str
    last_seen_at: datetime
    expires_at: datetime


def _credentials_query() -> sa.Select[Any]:
    u = users.c
    return sa.select(u.id, u.username, u.password_hash, u.suspended_at.is_not(None))


async def credentials(conn: AsyncConnection, login: str) -> Credentials | None:
    """The user signing in as `login`: a username, else an email address only one user has."""
    u = users.c
    row = (await conn.execute(_credentials_query().where(u.username == login))).one_or_none()
    if row is None and "@" in login:
        query = _credentials_query().where(sa.func.lower(u.email) == login.lower()).limit(2)
        found = list(await conn.execute(query))
        row = found[0] if len(found) == 1 else None
    return None if row is None else Credentials(*row)


async def set_password_hash(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    await conn.execute(
        sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def has_password(conn: AsyncConnection, user_id: int) -> bool:
    query = sa.select(users.c.password_hash.is_not(None)).where(users.c.id == user_id)
    return bool((await conn.execute(query)).scalar_one())


async def is_operator(conn: AsyncConnection, user_id: int) -> bool:
    query = sa.select(users.c.is_operator).where(users.c.id == user_id)
    return bool((await conn.execute(query)).scalar_one())


async def set_operator(conn: AsyncConnection, user_id: int, flag: bool) -> bool:
    """Grant or revoke; False when the user was so already (one guarded UPDATE)."""
    u = users.c
    result = await conn.execute(
        sa.update(users)
        .where(u.id == user_id, u.is_operator == (not flag))
        .values(is_operator=flag)
    )
    return result.rowcount == 1


async def operators(conn: AsyncConnection) -> set[int]:
    query = sa.select(users.c.id).where(users.c.is_operator.is_(True))
    return {int(i) for i in (await conn.execute(query)).scalars()}


# --- sessions ---------------------------------------------------------------------------


async def insert_session(
    conn: AsyncConnection,
    *,
    session_id: str,
    user_id: int,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        sa.insert(console_sessions).values(
            id=session_id,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )


async def session(conn: AsyncConnection, session_id: str) -> Session | None:
    s, u = console_sessions.c, users.c
    query = (
        sa.select(
            s.id,
            s.user_id,
            u.username,
            u.tier,
            u.is_operator,
            u.suspended_at.is_not(None),
            s.csrf_token,
            s.last_seen_at,
            s.expires_at,
        )
        .join_from(console_sessions, users, u.id == s.user_id)
        .where(s.id == session_id)
    )
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else Session(*row)


async def touch_session(conn: AsyncConnection, session_id: str, now: datetime) -> None:
    s = console_sessions.c
    await conn.execute(
        sa.update(console_sessions).where(s.id == session_id).values(last_seen_at=now)
    )


async def delete_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(sa.delete(console_sessions).where(console_sessions.c.id == session_id))


async def delete_sessions_of(conn: AsyncConnection, user_id: int) -> int:
    s = console_sessions.c
    result = await conn.execute(sa.delete(console_sessions).where(s.user_id == user_id))
    return int(result.rowcount)


async def delete_stale_sessions(
    conn: AsyncConnection, *, idle_before: datetime, now: datetime
) -> None:
    s = console_sessions.c
    await conn.execute(
        sa.delete(console_sessions).where(sa.or_(s.expires_at <= now, s.last_seen_at < idle_before))
    )


# --- invites ----------------------------------------------------------------------------


async def replace_invite(
    conn: AsyncConnection, *, token_hash: str, user_id: int, now: datetime, expires_at: datetime
) -> None:
    """A new invite for the user; their earlier unused ones stop working."""
    i = console_invites.c
    await conn.execute(sa.delete(console_invites).where(i.user_id == user_id, i.used_at.is_(None)))
    await conn.execute(
        sa.insert(console_invites).values(
            token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at
        )
    )


async def open_invite(conn: AsyncConnection, token_hash: str, now: datetime) -> int | None:
    """The user an unused, unexpired invite is for."""
    i = console_invites.c
    query = sa.select(i.user_id).where(
        i.token_hash == token_hash, i.used_at.is_(None), i.expires_at > now
    )
    found = (await conn.execute(query)).scalar_one_or_none()
    return None if found is None else int(found)


async def use_invite(conn: AsyncConnection, token_hash: str, now: datetime) -> int | None:
    """Spend the invite (once: a guarded UPDATE); the user it was for, or None."""
    user_id = await open_invite(conn, token_hash, now)
    if user_id is None:
        return None
    i = console_invites.c
    result = await conn.execute(
        sa.update(console_invites)
        .where(i.token_hash == token_hash, i.used_at.is_(None))
        .values(used_at=now)
    )
    return user_id if result.rowcount == 1 else None


# --- failed sign-ins ----------------------------------------------------------------------


async def failures(conn: AsyncConnection, subject: str, since: datetime) -> int:
    """The subject's failures in its window, if that window started after `since`."""
    f = console_login_failures.c
    query = sa.select(f.failures).where(f.subject == subject, f.window_start > since)
    return int((await conn.execute(query)).scalar_one_or_none() or 0)


async def add_failure(
    conn: AsyncConnection, subject: str, *, now: datetime, since: datetime
) -> None:
    """Count a failure: in the subject's current window, or in a new one from `now` when
    the last started before `since`."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(console_login_failures).values(subject=subject, window_start=now, failures=1)
    f = console_login_failures.c
    stale = f.window_start <= since
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[f.subject],
            set_={
                "failures": sa.case((stale, 1), else_=f.failures + 1),
                "window_start": sa.case((stale, now), else_=f.window_start),
            },
        )
    )


async def clear_failures(conn: AsyncConnection, subject: str) -> None:
    f = console_login_failures.c
    await conn.execute(sa.delete(console_login_failures).where(f.subject == subject))


# --- server health (the admin area) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    outbox_pending: int
    outbox_oldest_due: datetime | None
    outbox_failed: int
    holds_pending: int
    holds_pending_micros: int
    holds_oldest: datetime | None


async def health(conn: AsyncConnection) -> Health:
    """Webhook deliveries waiting and failed, and holds of calls in flight."""
    from bytespike.billing.tables import PENDING, holds
    from bytespike.webhooks.tables import webhook_deliveries

    d, h = webhook_deliveries.c, holds.c
    pending = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.min(d.next_attempt_at)).where(d.status == "pending")
        )
    ).one()
    failed = (await conn.execute(sa.select(sa.func.count()).where(d.status == "failed"))).scalar()
    held = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(h.amount_micros), 0),
                sa.func.min(h.created_at),
            ).where(PENDING)
        )
    ).one()
    return Health(
        int(pending[0]), pending[1], int(failed or 0), int(held[0]), int(held[1]), held[2]
    )
