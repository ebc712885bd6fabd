"""metering: usage_records; per-key model cap counters on api_key_models

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("hold_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("cost_micros >= 0", name=op.f("ck_usage_records_cost")),
        sa.CheckConstraint(
            "status IN ('ok', 'upstream_error', 'timeout', 'unavailable', 'malformed', "
            "'client_closed')",
            name=op.f("ck_usage_records_status"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_usage_records_wallet_id_wallets")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_usage_records_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["holds.id"], name=op.f("fk_usage_records_hold_id_holds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
    )
    op.create_index("ix_usage_wallet_id", "usage_records", ["wallet_id", "id"])
    op.create_index("ix_usage_wallet_time", "usage_records", ["wallet_id", "created_at"])
    with op.batch_alter_table("api_key_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period_start", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("period_spent_micros", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("held_micros", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_check_constraint("period_spent", "period_spent_micros >= 0")
        batch_op.create_check_constraint("held", "held_micros >= 0")


def downgrade() -> None:
    with op.batch_alter_table("api_key_models", schema=None) as batch_op:
        batch_op.drop_constraint("held", type_="check")
        batch_op.drop_constraint("period_spent", type_="check")
        batch_op.drop_column("held_micros")
        batch_op.drop_column("period_spent_micros")
        batch_op.drop_column("period_start")
    op.drop_index("ix_usage_wallet_time", table_name="usage_records")
    op.drop_index("ix_usage_wallet_id", table_name="usage_records")
    op.drop_table("usage_records")
