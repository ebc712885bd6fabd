"""Console sessions: signing in (rate limited), finding the session a cookie names, and
signing out.

The cookie carries a random token; the database keeps its SHA-256 with the session's CSRF
token, so a copy of the database opens no session. A session ends after IDLE without a
request, at LIFETIME whatever happens, when its user signs out, is suspended, or has their
password set by an operator.

Sign-in is limited per name typed and per client address (USER_LIMIT, ADDRESS_LIMIT
failures per WINDOW), counted in the database so every process shares the count; past it
the answer is 429 without the password even being checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.clock import as_utc
from bytespike.console import passwords, repo, tokens
from bytespike.console.repo import Session
from bytespike.context import Context
from bytespike.errors import AuthenticationError, PermissionDenied, RateLimited

SESSION_COOKIE = "bytespike_session"
IDLE = timedelta(hours=12)
LIFETIME = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often
WINDOW = timedelta(minutes=15)
USER_LIMIT = 10
ADDRESS_LIMIT = 50
MAX_LOGIN = 320


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # for the cookie, never stored
    user_id: int
    expires_at: datetime


def _subjects(login: str, address: str) -> tuple[str, str]:
    return f"user:{login.strip().lower()[:150]}", f"addr:{address[:150]}"


async def sign_in(ctx: Context, login: str, password: str, address: str) -> NewSession:
    """A new session for the user `login` names (username or email), or 401/403/429."""
    now = ctx.clock.now()
    login = login.strip()[:MAX_LOGIN]
    by_user, by_address = _subjects(login, address)
    async with ctx.db.read() as conn:
        user_failures = await repo.failures(conn, by_user, now - WINDOW)
        address_failures = await repo.failures(conn, by_address, now - WINDOW)
        found = await repo.credentials(conn, login) if login else None
    if user_failures >= USER_LIMIT or address_failures >= ADDRESS_LIMIT:
        minutes = int(WINDOW.total_seconds() // 60)
        raise RateLimited(f"too many failed sign-ins: try again in {minutes} minutes")
    if not await passwords.verify(None if found is None else found.password_hash, password):
        async with ctx.db.write() as conn:
            for subject in (by_user, by_address):
                await repo.add_failure(conn, subject, now=now, since=now - WINDOW)
        raise AuthenticationError("wrong username or password")
    assert found is not None
    if found.suspended:
        raise PermissionDenied("this account is suspended")
    token = tokens.mint()
    expires_at = now + LIFETIME
    async with ctx.db.write() as conn:
        await repo.clear_failures(conn, by_user)
        await repo.delete_stale_sessions(conn, idle_before=now - IDLE, now=now)
        await repo.insert_session(
            conn,
            session_id=tokens.digest(token),
            user_id=found.user_id,
            csrf_token=tokens.mint(),
            now=now,
            expires_at=expires_at,
        )
    return NewSession(token=token, user_id=found.user_id, expires_at=expires_at)


async def start(ctx: Context, user_id: int) -> NewSession:
    """A session for a user who just proved who they are another way (an invite link)."""
    token = tokens.mint()
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        await repo.insert_session(
            conn,
            session_id=tokens.digest(token),
            user_id=user_id,
            csrf_token=tokens.mint(),
            now=now,
            expires_at=now + LIFETIME,
        )
    return NewSession(token=token, user_id=user_id, expires_at=now + LIFETIME)


async def lookup(conn: AsyncConnection, token: str | None) -> Session | None:
    """The session `token` names, live or not, read in the caller's transaction (the
    console reads the viewer's orgs in the same one): `keep` says whether it still is."""
    if not token or len(token) > 100:
        return None
    return await repo.session(conn, tokens.digest(token))


async def keep(ctx: Context, found: Session) -> bool:
    """Whether a session `lookup` found is live; an ended one is deleted on the way."""
    now = ctx.clock.now()
    last_seen = as_utc(found.last_seen_at)
    if found.suspended or now >= as_utc(found.expires_at) or now - last_seen >= IDLE:
        async with ctx.db.write() as conn:
            await repo.delete_session(conn, found.id)
        return False
    if now - last_seen >= TOUCH_EVERY:
        async with ctx.db.write() as conn:
            await repo.touch_session(conn, found.id, now)
    return True


async def sign_out(ctx: Context, session_id: str) -> None:
    async with ctx.db.write() as conn:
        await repo.delete_session(conn, session_id)
