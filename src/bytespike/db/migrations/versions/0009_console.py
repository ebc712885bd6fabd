"""console: passwords, operators, sessions, invites and sign-in limits (issue 10)

- users.password_hash: an Argon2id hash (NULL: the user cannot sign in to the console);
  users.is_operator: the console's admin area (the admin token stays for the API and CLI).
- console_sessions: server-side sessions; the cookie carries a random token, only its
  SHA-256 is stored, beside the session's CSRF token and its idle and absolute ends.
- console_invites: one-time links where a user chooses a password (SHA-256 of the token).
- console_login_failures: failed sign-ins per subject (a username, a client address) in
  the current window, so sign-in is limited across every process.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(200), nullable=True))
        batch_op.add_column(
            sa.Column("is_operator", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("last_seen_at"),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("id", name="pk_console_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_console_sessions_user_id_users"
        ),
    )
    op.create_index("ix_console_sessions_user", "console_sessions", ["user_id"])
    op.create_table(
        "console_invites",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_console_invites"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_console_invites_user_id_users"),
    )
    op.create_index("ix_console_invites_user", "console_invites", ["user_id"])
    op.create_table(
        "console_login_failures",
        sa.Column("subject", sa.String(200), nullable=False),
        _ts("window_start"),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_console_login_failures"),
    )


def downgrade() -> None:
    op.drop_table("console_login_failures")
    op.drop_index("ix_console_invites_user", table_name="console_invites")
    op.drop_table("console_invites")
    op.drop_index("ix_console_sessions_user", table_name="console_sessions")
    op.drop_table("console_sessions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("is_operator")
        batch_op.drop_column("password_hash")
