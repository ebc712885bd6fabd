"""holds.token: a random number per call, to find its hold again (issue 13, failures)

A group-commit batch whose connection dropped as it committed may have committed all the
same; its operations are then run again, one by one (db/batch.py). A hold placed again so
would leave the first one pending, its money locked until the hold's TTL. The call's token
lets the retry find that first hold and give it back before placing the new one
(billing/metering.py `reserve`). Only a retry looks for it, among the pending holds: no
index.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("holds", sa.Column("token", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("token")
