"""The api_keys table and each key's model roster."""

import sqlalchemy as sa

from bytespike.db.metadata import Micros, metadata, timestamp

QUOTA_RESETS = ("daily", "weekly", "monthly")
BUDGET_RESETS = QUOTA_RESETS

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=True),
    # SHA-256 of the whole key: the key carries 256 bits of randomness, so a slow hash adds nothing.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("rate_limit", sa.Integer, nullable=False),
    sa.Column("quota_reset", sa.String(16), nullable=True),
    # True: the roster is the whole catalog, including models added to it later.
    sa.Column("all_models", sa.Boolean, nullable=False),
    timestamp("created_at"),
    timestamp("revoked_at", nullable=True),
    # Bumped by every change to what the key may do (settings, roll, its user suspended, its
    # membership removed): a process holding a cached copy sees the mismatch when it places
    # the call's hold, and reads the key anew (keys/cache.py).
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    timestamp("updated_at", nullable=True),
    # After this instant the key gets 401.
    timestamp("expires_at", nullable=True),
    # A rolled key's previous secret keeps working until `previous_valid_until`.
    sa.Column("previous_key_hash", sa.String(64), nullable=True),
    timestamp("previous_valid_until", nullable=True),
    # The key's total budget over every model, enforced through the hold like a per-model
    # cap (billing/budgets.py): spend settled since `budget_period_start`, and money held by
    # calls in flight, kept beside it so one guarded UPDATE enforces it.
    sa.Column("budget_micros", Micros, nullable=True),
    sa.Column("budget_reset", sa.String(16), nullable=True),
    timestamp("budget_period_start", nullable=True),
    sa.Column("budget_spent_micros", Micros, nullable=False, server_default="0"),
    sa.Column("budget_held_micros", Micros, nullable=False, server_default="0"),
    sa.CheckConstraint("rate_limit > 0", name="rate_limit"),
    sa.CheckConstraint("budget_micros IS NULL OR budget_micros >= 0", name="budget"),
    sa.CheckConstraint("budget_spent_micros >= 0", name="budget_spent"),
    sa.CheckConstraint("budget_held_micros >= 0", name="budget_held"),
    sa.CheckConstraint(
        "budget_reset IS NULL OR budget_reset IN ('daily', 'weekly', 'monthly')",
        name="budget_reset",
    ),
    sa.Index(
        "uq_api_keys_previous_key_hash",
        "previous_key_hash",
        unique=True,
        sqlite_where=sa.text("previous_key_hash IS NOT NULL"),
        postgresql_where=sa.text("previous_key_hash IS NOT NULL"),
    ),
    sa.Index("ix_api_keys_user", "user_id"),
    sa.CheckConstraint(
        "quota_reset IS NULL OR quota_reset IN ('daily', 'weekly', 'monthly')", name="quota_reset"
    ),
)

api_key_models = sa.Table(
    "api_key_models",
    metadata,
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("cap_micros", Micros, nullable=True),
    # The cap's counters, kept beside it so one guarded UPDATE enforces it atomically:
    # spend settled since `period_start` and money held by calls still in flight.
    timestamp("period_start", nullable=True),
    sa.Column("period_spent_micros", Micros, nullable=False, server_default="0"),
    sa.Column("held_micros", Micros, nullable=False, server_default="0"),
    # When quota.cap_reached was last sent for this cap: once per quota period, so a period
    # that started after it has not been told yet (billing/quotas.py's `mark_reached`).
    timestamp("cap_reached_at", nullable=True),
    sa.CheckConstraint("cap_micros IS NULL OR cap_micros >= 0", name="cap"),
    sa.CheckConstraint("period_spent_micros >= 0", name="period_spent"),
    sa.CheckConstraint("held_micros >= 0", name="held"),
)
