"""The orgs and memberships tables."""

import sqlalchemy as sa

from bytespike.db.metadata import metadata, timestamp

ROLES = ("owner", "admin", "member")

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    timestamp("created_at"),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    timestamp("created_at"),
    sa.CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),
    sa.Index("ix_memberships_user_created", "user_id", "created_at"),
)
