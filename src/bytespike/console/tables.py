"""The console's tables: server-side sessions, invite links and failed sign-ins. (The
users' password hashes and operator flag are columns of `users`: accounts/tables.py.)"""

import sqlalchemy as sa

from bytespike.db.metadata import metadata, timestamp

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    # SHA-256 of the cookie's random token: a stolen database opens no session.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    timestamp("created_at"),
    timestamp("last_seen_at"),  # the session ends after IDLE of silence
    timestamp("expires_at"),  # and at this instant whatever happens
    sa.Index("ix_console_sessions_user", "user_id"),
)

console_invites = sa.Table(
    "console_invites",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    timestamp("created_at"),
    timestamp("expires_at"),
    timestamp("used_at", nullable=True),
    sa.Index("ix_console_invites_user", "user_id"),
)

console_login_failures = sa.Table(
    "console_login_failures",
    metadata,
    # "user:<name as typed, lower-cased>" or "addr:<client address>".
    sa.Column("subject", sa.String(200), primary_key=True),
    timestamp("window_start"),
    sa.Column("failures", sa.Integer, nullable=False),
)
