"""stored responses: the Responses API's `store` (issue 11)

- stored_responses: one row per response stored (`store` true, the default): its `resp_…`
  id, its owner (the key's user; any key of that user may read, delete or continue it), the
  key and wallet that paid for it, the model, the whole conversation it answered (input
  items, any replayed ones included) and the Response object itself, as JSON text.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("wallet_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_items", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stored_responses"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_stored_responses_user_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name="fk_stored_responses_key_id_api_keys"
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name="fk_stored_responses_wallet_id_wallets"
        ),
    )
    op.create_index("ix_stored_responses_user_time", "stored_responses", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_stored_responses_user_time", table_name="stored_responses")
    op.drop_table("stored_responses")
