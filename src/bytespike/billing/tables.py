"""Wallets (running balances), ledger entries (the truth) and holds.

Each wallet keeps five accounts. Every ledger entry moves money between them and must
balance: d_available + d_held + d_spent = d_topped_up + d_adjusted. The wallet row holds the
running sum of its entries (checked by `ledger.verify`), which is what lets a hold be placed
with one conditional UPDATE instead of summing history under a lock.
"""

import sqlalchemy as sa

from bytespike.db.metadata import BigId, Micros, metadata, timestamp

ENTRY_KINDS = ("topup", "hold", "settle", "release", "expire", "adjust")
HOLD_STATES = ("pending", "settled", "released", "expired")

wallets = sa.Table(
    "wallets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True, unique=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=True, unique=True),
    sa.Column("available_micros", Micros, nullable=False, server_default="0"),
    sa.Column("held_micros", Micros, nullable=False, server_default="0"),
    sa.Column("spent_micros", Micros, nullable=False, server_default="0"),
    sa.Column("topped_up_micros", Micros, nullable=False, server_default="0"),
    sa.Column("adjusted_micros", Micros, nullable=False, server_default="0"),
    sa.Column("low_balance_threshold_micros", Micros, nullable=False),
    # True until a debit crosses the threshold; money coming in re-arms it (docs/webhooks.md).
    sa.Column("low_balance_armed", sa.Boolean, nullable=False, server_default=sa.true()),
    timestamp("created_at"),
    sa.CheckConstraint("(user_id IS NULL) <> (org_id IS NULL)", name="one_owner"),
    sa.CheckConstraint("available_micros >= 0", name="available"),
    sa.CheckConstraint("held_micros >= 0", name="held"),
    sa.CheckConstraint("spent_micros >= 0", name="spent"),
    sa.CheckConstraint("topped_up_micros >= 0", name="topped_up"),
    sa.CheckConstraint("low_balance_threshold_micros >= 0", name="threshold"),
)

# The foreign keys of the tables a metered call writes (holds, ledger_entries, and
# usage/tables.py's usage_records and usage_daily) are enforced on SQLite only: PostgreSQL's
# cost a tenth of its time per call, so there `ledger verify` checks them (migration 0014,
# reconciliation.REFERENCES).
holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("amount_micros", Micros, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    timestamp("created_at"),
    timestamp("expires_at"),
    timestamp("closed_at", nullable=True),
    # A random number per call: a retry of a batch that may have committed finds the call's
    # hold by it (metering.reserve; migration 0015). Never looked up otherwise: no index.
    sa.Column("token", sa.BigInteger, nullable=True),
    sa.CheckConstraint("amount_micros > 0", name="amount"),
    sa.CheckConstraint("status IN ('pending', 'settled', 'released', 'expired')", name="status"),
    # Only pending holds are ever looked up (the sweeper, `ledger.verify`), and they are the
    # calls in flight: a partial index stays small, and each call touches one index page.
    sa.Index(
        "ix_holds_pending_expiry",
        "expires_at",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
)

# Pending holds, as a literal rather than a parameter: a planner uses a partial index only
# for a query whose condition it can see implies the index's (`ix_holds_pending_expiry`).
PENDING = holds.c.status == sa.literal_column("'pending'")

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("d_available", Micros, nullable=False, server_default="0"),
    sa.Column("d_held", Micros, nullable=False, server_default="0"),
    sa.Column("d_spent", Micros, nullable=False, server_default="0"),
    sa.Column("d_topped_up", Micros, nullable=False, server_default="0"),
    sa.Column("d_adjusted", Micros, nullable=False, server_default="0"),
    sa.Column("hold_id", BigId, sa.ForeignKey("holds.id"), nullable=True),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    # Idempotency for top-ups: a payment system's retry carries the same reference.
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("memo", sa.String(500), nullable=True),
    timestamp("created_at"),
    sa.CheckConstraint(
        "d_available + d_held + d_spent = d_topped_up + d_adjusted", name="balanced"
    ),
    sa.CheckConstraint(
        "kind IN ('topup', 'hold', 'settle', 'release', 'expire', 'adjust')", name="kind"
    ),
    sa.Index("ix_ledger_wallet", "wallet_id", "id"),
    # A hold's entries, for its call's receipt (usage/receipts.py): its 'hold' and 'settle'
    # entries are named by the usage record, so only the rarer endings are indexed and a
    # metered call's two entries touch no index but the wallet's.
    sa.Index(
        "ix_ledger_hold_ended",
        "hold_id",
        sqlite_where=sa.text("kind IN ('release', 'expire')"),
        postgresql_where=sa.text("kind IN ('release', 'expire')"),
    ),
    # Partial: metered calls' entries carry no reference and so never touch this index.
    sa.Index(
        "uq_ledger_entries_reference",
        "reference",
        unique=True,
        sqlite_where=sa.text("reference IS NOT NULL"),
        postgresql_where=sa.text("reference IS NOT NULL"),
    ),
)

# The entries `ix_ledger_hold_ended` holds, as a literal for the same reason as PENDING.
ENDED = ledger_entries.c.kind.in_([sa.literal_column("'release'"), sa.literal_column("'expire'")])

# A metered call's charge corrected after the fact (`bytespike ledger reprice`, billing/
# repricing.py): one row per call and correction entry, with the difference it made (a
# debit positive, a credit negative). A call's charge is its usage record's cost plus its
# corrections; the entry (an 'adjust' moving `available` and `spent`) moves their sum.
price_corrections = sa.Table(
    "price_corrections",
    metadata,
    sa.Column("usage_id", BigId, sa.ForeignKey("usage_records.id"), primary_key=True),
    sa.Column("entry_id", BigId, sa.ForeignKey("ledger_entries.id"), primary_key=True),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False),
    sa.Column("delta_micros", Micros, nullable=False),
    timestamp("created_at"),
    sa.CheckConstraint("delta_micros <> 0", name="delta"),
    sa.Index("ix_price_corrections_entry", "entry_id"),
)
