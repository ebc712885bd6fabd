"""The users table."""

import sqlalchemy as sa

from bytespike.db.metadata import metadata, timestamp

TIERS = ("individual", "enterprise")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    timestamp("created_at"),
    # Set while suspended: every key of the user is refused (keys/service.py's `resolve`).
    timestamp("suspended_at", nullable=True),
    # The console (bytespike/console): an Argon2id hash (NULL: cannot sign in), and whether
    # the user may use its admin area.
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("is_operator", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("tier IN ('individual', 'enterprise')", name="tier"),
)
