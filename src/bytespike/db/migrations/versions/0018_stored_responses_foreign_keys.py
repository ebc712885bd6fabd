"""stored_responses' foreign keys on PostgreSQL: dropped (issue 13, the lean PostgreSQL path)

Each stored response (the Responses API's `store`, one per call) names its user, key and
wallet; on PostgreSQL each of the three references is checked by a trigger that runs a
query and takes a share lock on the row referred to: about 0.09 ms of the server's time of
a one-row insert's 0.11 ms (EXPLAIN ANALYZE, warm). The row is written from the call's own
authenticated key, and nothing deletes a user, a key or a wallet; as for the metered
tables (0014), SQLite keeps them, where a check is an index probe in the same process.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, referred table), named by the metadata's convention (db/metadata.py).
REFERENCES = (("user_id", "users"), ("key_id", "api_keys"), ("wallet_id", "wallets"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column, referred in REFERENCES:
        name = f"fk_stored_responses_{column}_{referred}"
        op.drop_constraint(name, "stored_responses", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column, referred in REFERENCES:
        name = f"fk_stored_responses_{column}_{referred}"
        op.create_foreign_key(name, "stored_responses", referred, [column], ["id"])
