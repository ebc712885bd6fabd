"""operator: suspension, key lifecycle and budgets, the audit log, daily rollups

- users.suspended_at: a suspended user's keys are refused.
- api_keys: `version` (bumped by every change to what a key may do, so cached copies in
  any process notice), `expires_at`, a rolled key's previous hash and its grace period, and
  the key's total budget with its counters (spend this period, money in flight).
- audit_log: every change made by an operator, append-only.
- usage_daily and refusals_daily: per-day rollups the reports read, maintained by the
  settlement (and the refusal) itself. Existing usage records are rolled up here once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREVIOUS = sa.text("previous_key_hash IS NOT NULL")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(_ts("suspended_at"))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="0"))
        batch_op.add_column(_ts("updated_at"))
        batch_op.add_column(_ts("expires_at"))
        batch_op.add_column(sa.Column("previous_key_hash", sa.String(64), nullable=True))
        batch_op.add_column(_ts("previous_valid_until"))
        batch_op.add_column(sa.Column("budget_micros", sa.BigInteger, nullable=True))
        batch_op.add_column(sa.Column("budget_reset", sa.String(16), nullable=True))
        batch_op.add_column(_ts("budget_period_start"))
        batch_op.add_column(
            sa.Column("budget_spent_micros", sa.BigInteger, nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("budget_held_micros", sa.BigInteger, nullable=False, server_default="0")
        )
        batch_op.create_check_constraint("budget", "budget_micros IS NULL OR budget_micros >= 0")
        batch_op.create_check_constraint("budget_spent", "budget_spent_micros >= 0")
        batch_op.create_check_constraint("budget_held", "budget_held_micros >= 0")
        batch_op.create_check_constraint(
            "budget_reset",
            "budget_reset IS NULL OR budget_reset IN ('daily', 'weekly', 'monthly')",
        )
        batch_op.create_index(
            "uq_api_keys_previous_key_hash",
            ["previous_key_hash"],
            unique=True,
            sqlite_where=PREVIOUS,
            postgresql_where=PREVIOUS,
        )
        batch_op.create_index("ix_api_keys_user", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True),
        _ts("created_at", nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(200), nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("wallet_id", sa.Integer, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_micros", sa.BigInteger, nullable=False),
        _ts("last_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_usage_daily_wallet_id_wallets")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_usage_daily_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("day", "wallet_id", "key_id", "model", name=op.f("pk_usage_daily")),
    )
    op.create_index("ix_usage_daily_wallet_day", "usage_daily", ["wallet_id", "day"])
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["key_id", "day"])
    op.create_table(
        "refusals_daily",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("wallet_id", sa.Integer, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_refusals_daily_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_refusals_daily_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("day", "key_id", "reason", name=op.f("pk_refusals_daily")),
    )
    op.create_index("ix_refusals_daily_wallet_day", "refusals_daily", ["wallet_id", "day"])
    _roll_up_existing()


def _roll_up_existing() -> None:
    """Usage recorded before this revision, rolled up as the settlement now does."""
    if op.get_bind().dialect.name == "postgresql":
        day = "(created_at AT TIME ZONE 'UTC')::date"
    else:  # SQLite stores the UTC wall time as text: its date is the first ten characters
        day = "substr(created_at, 1, 10)"
    op.execute(
        """
        INSERT INTO usage_daily (day, wallet_id, key_id, model, requests, input_tokens,
                                 output_tokens, cached_tokens, cost_micros, last_at)
        SELECT {day}, wallet_id, key_id, model, count(*), sum(input_tokens),
               sum(output_tokens), sum(cached_tokens), sum(cost_micros), max(created_at)
        FROM usage_records GROUP BY {day}, wallet_id, key_id, model
        """.replace("{day}", day)
    )


def downgrade() -> None:
    op.drop_table("refusals_daily")
    op.drop_table("usage_daily")
    op.drop_table("audit_log")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_user")
        batch_op.drop_index("uq_api_keys_previous_key_hash")
        for name in ("budget_reset", "budget_held", "budget_spent", "budget"):
            batch_op.drop_constraint(name, type_="check")
        for column in (
            "budget_held_micros", "budget_spent_micros", "budget_period_start", "budget_reset",
            "budget_micros", "previous_valid_until", "previous_key_hash", "expires_at",
            "updated_at", "version",
        ):  # fmt: skip
            batch_op.drop_column(column)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("suspended_at")
