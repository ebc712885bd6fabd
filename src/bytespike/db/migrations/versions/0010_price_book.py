"""price book: a receipt per call, and price corrections (issue 12)

- usage_records: the token classes beyond input, output and cached tokens (cache writes,
  their 1-hour part, reasoning, tool-use prompts), web searches, and the price period,
  tier and unit prices the call was charged by (usage/receipts.py). Calls recorded before
  this revision keep zeros and no prices: their receipt has no lines.
- price_corrections: a call's charge corrected after the fact (`bytespike ledger reprice`),
  one row per call and correction entry.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTS = (
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "tool_prompt_tokens",
    "web_search_requests",
)


def upgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        for name in COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("price_period", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("price_tier", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("unit_prices", sa.Text(), nullable=True))
    op.create_table(
        "price_corrections",
        sa.Column("usage_id", BigId, nullable=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("delta_micros", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("delta_micros <> 0", name=op.f("ck_price_corrections_delta")),
        sa.ForeignKeyConstraint(
            ["usage_id"],
            ["usage_records.id"],
            name=op.f("fk_price_corrections_usage_id_usage_records"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_price_corrections_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_price_corrections_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("usage_id", "entry_id", name=op.f("pk_price_corrections")),
    )
    op.create_index("ix_price_corrections_entry", "price_corrections", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_price_corrections_entry", table_name="price_corrections")
    op.drop_table("price_corrections")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        for name in ("unit_prices", "price_tier", "price_period", *reversed(COUNTS)):
            batch_op.drop_column(name)
