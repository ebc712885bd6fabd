"""hot tables' foreign keys on PostgreSQL: dropped (issue 13, the lean PostgreSQL path)

A metered call writes five rows that name a wallet, a key or a hold (its hold, two ledger
entries, its usage record, its day's rollup). On PostgreSQL each of those references is
checked by a trigger that runs a query and takes a share lock on the row referred to: 11
per call, about a tenth of the server's CPU per call, and a lock on the key's row that
every concurrent transaction of every worker and replica takes again. The rows they check
are written by the gateway's own statements from rows it has just read or locked in the
same transaction (billing/fused.py, billing/metering.py), and nothing deletes a wallet, a
key or a hold. So the checks move to `ledger verify`, which reports any row of these
tables whose wallet, key or hold does not exist (billing/ledger.py `orphans`).

SQLite keeps them: its checks are an index probe in the same process, nearly free, and
dropping one there means rebuilding the table.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referred table), named by the metadata's convention (db/metadata.py).
HOT = (
    ("holds", "wallet_id", "wallets"),
    ("holds", "key_id", "api_keys"),
    ("ledger_entries", "wallet_id", "wallets"),
    ("ledger_entries", "hold_id", "holds"),
    ("ledger_entries", "key_id", "api_keys"),
    ("usage_records", "wallet_id", "wallets"),
    ("usage_records", "hold_id", "holds"),
    ("usage_records", "key_id", "api_keys"),
    ("usage_daily", "wallet_id", "wallets"),
    ("usage_daily", "key_id", "api_keys"),
)


def _name(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, referred in HOT:
        op.drop_constraint(_name(table, column, referred), table, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, referred in HOT:
        name = _name(table, column, referred)
        op.create_foreign_key(name, table, referred, [column], ["id"])
