"""Use cases on console credentials: an operator sets a password or sends an invite link,
makes a user an operator or not; a user accepts an invite. Every change is audited like
the operator's other changes; a password set by an operator ends the user's sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bytespike.accounts import repo as users_repo
from bytespike.audit import log as audit
from bytespike.clock import iso_z
from bytespike.console import passwords, repo, tokens
from bytespike.context import Context
from bytespike.errors import NotFound

INVITE_LIFETIME = timedelta(days=7)
INVITE_PATH = "/console/invite?token="


async def set_password(ctx: Context, ref: str, password: str) -> dict[str, Any]:
    """Set (or reset) a user's password; their open sessions end."""
    hashed = await passwords.hash_password(password)
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        user = await users_repo.required(conn, ref)
        had = await repo.has_password(conn, user.id)
        await repo.set_password_hash(conn, user.id, hashed)
        ended = await repo.delete_sessions_of(conn, user.id)
        await audit.record(
            conn,
            "user.set_password",
            "user",
            user.id,
            now=now,
            before={"password_set": had},
            after={"password_set": True, "sessions_ended": ended},
        )
    return {"id": user.id, "username": user.username, "password_set": True, "sessions_ended": ended}


async def invite(ctx: Context, ref: str) -> dict[str, Any]:
    """A one-time link, valid INVITE_LIFETIME, where the user chooses a password. A new
    invite replaces the user's earlier unused ones."""
    token = tokens.mint()
    now = ctx.clock.now()
    expires_at = now + INVITE_LIFETIME
    async with ctx.db.write() as conn:
        user = await users_repo.required(conn, ref)
        await repo.replace_invite(
            conn, token_hash=tokens.digest(token), user_id=user.id, now=now, expires_at=expires_at
        )
        await audit.record(
            conn, "user.invite", "user", user.id, now=now, after={"expires_at": iso_z(expires_at)}
        )
    base = ctx.settings.public_url.rstrip("/")
    return {
        "id": user.id,
        "username": user.username,
        "url": f"{base}{INVITE_PATH}{token}",
        "expires_at": iso_z(expires_at),
    }


async def invited_user(ctx: Context, token: str) -> str | None:
    """The username an open invite is for (None: unknown, used or expired)."""
    async with ctx.db.read() as conn:
        user_id = await repo.open_invite(conn, tokens.digest(token), ctx.clock.now())
        user = None if user_id is None else await users_repo.by_id(conn, user_id)
    return None if user is None else str(user.username)


async def accept_invite(ctx: Context, token: str, password: str) -> int:
    """Set the invited user's password, spending the invite; the user's id, or 404."""
    hashed = await passwords.hash_password(password)
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        user_id = await repo.use_invite(conn, tokens.digest(token), now)
        if user_id is None:
            raise NotFound("this invite link is unknown, used or expired: ask for a new one")
        await repo.set_password_hash(conn, user_id, hashed)
        await repo.delete_sessions_of(conn, user_id)
        await audit.record(
            conn, "user.accept_invite", "user", user_id, now=now, after={"password_set": True}
        )
    return user_id


async def set_operator(ctx: Context, ref: str, *, operator: bool) -> dict[str, Any]:
    """Grant or revoke the console's admin area; doing it twice changes nothing."""
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        user = await users_repo.required(conn, ref)
        changed = await repo.set_operator(conn, user.id, operator)
        if changed:
            await audit.record(
                conn,
                "user.grant_operator" if operator else "user.revoke_operator",
                "user",
                user.id,
                now=now,
                before={"is_operator": not operator},
                after={"is_operator": operator},
            )
    return {"id": user.id, "username": user.username, "is_operator": operator, "changed": changed}
