"""usage_records.attempts: each deployment a call tried (issue 14, deployments and fallback)

A model may have several deployments (catalog.py `Deployment`); a call that falls back
tries more than one, inside its one hold. The usage record lists each attempt in order as
JSON text (deployment, provider, outcome, latency_ms, upstream_status), the same on SQLite
and PostgreSQL: it is read whole and never queried into. Nullable: calls recorded before
this revision have none.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_column("attempts")
