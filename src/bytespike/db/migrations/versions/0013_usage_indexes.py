"""usage indexes: a wallet's calls by time, then id (issue 10, console read performance)

The calls' list (usage/repo.py `page`, behind /api/v1/me/usage and /console/usage) orders
newest first by (created_at, id). One index on (wallet_id, created_at, id) serves a range
of days and that order together: the newest `limit` rows of the range are read in index
order, with no sort over the range. It replaces both earlier indexes: (wallet_id, id)
ordered by id, so a range of days was filtered row by row or sorted whole, and
(wallet_id, created_at) is its prefix. One index, not two, is also one fewer index page
the metered insert writes.

The same statements on both databases: SQLite and PostgreSQL create and drop indexes in
place (no table rebuild), the new one first so no moment lacks one.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_usage_wallet_time_id", "usage_records", ["wallet_id", "created_at", "id"])
    op.drop_index("ix_usage_wallet_time", table_name="usage_records")
    op.drop_index("ix_usage_wallet_id", table_name="usage_records")


def downgrade() -> None:
    op.create_index("ix_usage_wallet_id", "usage_records", ["wallet_id", "id"])
    op.create_index("ix_usage_wallet_time", "usage_records", ["wallet_id", "created_at"])
    op.drop_index("ix_usage_wallet_time_id", table_name="usage_records")
