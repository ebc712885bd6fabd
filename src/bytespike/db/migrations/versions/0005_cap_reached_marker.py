"""cap reached marker: api_key_models.cap_reached_at

`quota.cap_reached` fires once per key, model and quota period: the first time the cap
refuses a call or spend reaches it. The roster row keeps when it last fired, so a period
that started after that time has not been told yet (a lifetime cap is told once). Rows that
exist already start untold: a cap reached before this revision is told again once, at its
next refusal or settlement.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_key_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cap_reached_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_key_models", schema=None) as batch_op:
        batch_op.drop_column("cap_reached_at")
