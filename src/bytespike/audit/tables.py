"""audit_log: every change an operator made, append-only."""

import sqlalchemy as sa

from bytespike.db.metadata import BigId, metadata, timestamp

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    timestamp("created_at"),
    # Who: "cli:<os user>", "admin-api", "console:<username>".
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),  # e.g. "key.update"
    sa.Column("target_type", sa.String(32), nullable=False),  # user, org, key, wallet, ...
    sa.Column("target_id", sa.String(200), nullable=False),
    # JSON objects (text): the target's fields before and after; never a secret.
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
)
