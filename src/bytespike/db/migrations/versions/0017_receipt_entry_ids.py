"""usage_records.hold_entry_id and settle_entry_id: a receipt's entries by primary key (issue 13)

A call's receipt lists its hold's ledger entries (usage/receipts.py). They were found
through an index on ledger_entries (key_id, model, created_at) that nothing else read, yet
every metered call wrote it twice, once per entry: on SQLite 2 of the call's 15 WAL
pages, on PostgreSQL 2 index insertions. Now the usage record names the 'hold' and 'settle'
entries of its hold, and only the rarer endings ('release', 'expire') are indexed, by hold
(`ix_ledger_hold_ended`, partial), which a metered call that settles never touches.

Existing records are filled from their holds' entries, through an index on hold_id made
for the purpose and dropped after. In a rolling upgrade (docs/deploy.md) the old replicas
still serving write records that name no entries: a receipt finds those among its wallet's
entries, and `ledger verify` accepts a record that names none. Their own receipts, without
the index they read, scan the ledger until they are restarted onto this version.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ENDED = "kind IN ('release', 'expire')"


# Each record's hold's one 'hold' entry, and its 'settle' entry if it has one.
FILL = """
UPDATE usage_records SET
    hold_entry_id = (SELECT min(e.id) FROM ledger_entries e
                     WHERE e.hold_id = usage_records.hold_id AND e.kind = 'hold'),
    settle_entry_id = (SELECT min(e.id) FROM ledger_entries e
                       WHERE e.hold_id = usage_records.hold_id AND e.kind = 'settle')
WHERE hold_id IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("hold_entry_id", BigId, nullable=True))
    op.add_column("usage_records", sa.Column("settle_entry_id", BigId, nullable=True))
    op.create_index("ix_ledger_fill_0017", "ledger_entries", ["hold_id"])
    op.execute(FILL)
    op.drop_index("ix_ledger_fill_0017", table_name="ledger_entries")
    op.create_index(
        "ix_ledger_hold_ended",
        "ledger_entries",
        ["hold_id"],
        sqlite_where=sa.text(ENDED),
        postgresql_where=sa.text(ENDED),
    )
    op.drop_index("ix_ledger_key_model_time", table_name="ledger_entries")


def downgrade() -> None:
    op.create_index("ix_ledger_key_model_time", "ledger_entries", ["key_id", "model", "created_at"])
    op.drop_index("ix_ledger_hold_ended", table_name="ledger_entries")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("settle_entry_id")
        batch.drop_column("hold_entry_id")
