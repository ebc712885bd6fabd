"""partial indexes: pending holds by expiry; top-up references

A metered call used to touch five index pages it never needed: two indexes on every hold
(wallet and status, status and expiry) and the unique index on ledger references, which
only top-ups carry. Pending holds are the only ones looked up, and only by expiry (the
sweeper) or wallet (`ledger.verify`, over the few in flight), so one partial index serves.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
REFERENCED = sa.text("reference IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_status_expires")
        batch_op.drop_index("ix_holds_wallet_status")
        batch_op.create_index(
            "ix_holds_pending_expiry",
            ["expires_at"],
            unique=False,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_ledger_entries_reference", type_="unique")
        batch_op.create_index(
            "uq_ledger_entries_reference",
            ["reference"],
            unique=True,
            sqlite_where=REFERENCED,
            postgresql_where=REFERENCED,
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_ledger_entries_reference")
        batch_op.create_unique_constraint("uq_ledger_entries_reference", ["reference"])
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_pending_expiry")
        batch_op.create_index("ix_holds_wallet_status", ["wallet_id", "status"], unique=False)
        batch_op.create_index("ix_holds_status_expires", ["status", "expires_at"], unique=False)
