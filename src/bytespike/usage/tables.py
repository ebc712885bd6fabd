"""usage_records: one row per metered call (tokens, cost, outcome, latency); the daily
rollups the reports read (usage_daily, refusals_daily)."""

import sqlalchemy as sa

from bytespike.db.metadata import BigId, Micros, metadata, timestamp

# Statuses (the CHECK below): ok, answered; upstream_error/timeout/unavailable/malformed, the
# upstream failed (UpstreamFailure.usage_status); client_closed, the client went away
# mid-stream (what was streamed is billed).

# Its foreign keys, and usage_daily's, are SQLite's only (billing/tables.py, above holds).
usage_records = sa.Table(
    "usage_records",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=False),
    sa.Column("hold_id", BigId, sa.ForeignKey("holds.id"), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(40), nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cached_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost_micros", Micros, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    timestamp("created_at"),
    # The HTTP request's id (bytespike/request_ids.py); none on calls from before 0008.
    sa.Column("request_id", sa.String(64), nullable=True),
    # The call's receipt (0010): the rest of its token classes (parts of input_tokens and
    # output_tokens, upstream/base.py's Usage), its web searches, the price period and tier
    # it was priced by, and the unit price of each class it used, as JSON of decimal text
    # ({"input": "3.00", ...}: exact, unlike a float column). Calls from before 0010 have
    # zeros and no prices.
    sa.Column("cache_write_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cache_write_1h_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tool_prompt_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("web_search_requests", sa.Integer, nullable=False, server_default="0"),
    sa.Column("price_period", sa.String(200), nullable=True),
    sa.Column("price_tier", sa.Integer, nullable=True),  # its threshold; 0: the base prices
    sa.Column("unit_prices", sa.Text, nullable=True),
    # Each deployment the call tried, in order, as JSON (upstream/deployments.py `Attempt`):
    # [{"deployment", "provider", "outcome", "latency_ms", "upstream_status"?}]; none before 0012.
    sa.Column("attempts", sa.Text, nullable=True),
    # The ledger entries that placed the call's hold and settled it (0017), so that its
    # receipt reads them by primary key (usage/receipts.py); none to settle when nothing
    # moved. No foreign key: `ledger verify` checks that they are the hold's own.
    sa.Column("hold_entry_id", BigId, nullable=True),
    sa.Column("settle_entry_id", BigId, nullable=True),
    sa.CheckConstraint("cost_micros >= 0", name="cost"),
    sa.CheckConstraint(
        "status IN ('ok', 'upstream_error', 'timeout', 'unavailable', 'malformed', "
        "'client_closed')",
        name="status",
    ),
    # A wallet's calls newest first (usage/repo.py `page`), over a range of days or not: read
    # in index order, `limit` rows and no sort. One index, so the metered insert updates one.
    sa.Index("ix_usage_wallet_time_id", "wallet_id", "created_at", "id"),
)

# One row per UTC day, wallet, key and model, maintained in the settlement transaction (the
# same statement on PostgreSQL's fused path): reports sum days, never calls.
usage_daily = sa.Table(
    "usage_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), primary_key=True),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_micros", Micros, nullable=False),
    timestamp("last_at"),  # the latest call counted: a key's "last used"
    sa.Index("ix_usage_daily_wallet_day", "wallet_id", "day"),
    sa.Index("ix_usage_daily_key_day", "key_id", "day"),
)

# Calls refused after the key was recognised (rate limit, roster, balance, cap, budget...),
# per UTC day, key and reason. 401s have no key to count against.
refusals_daily = sa.Table(
    "refusals_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
    sa.Column("reason", sa.String(64), primary_key=True),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Index("ix_refusals_daily_wallet_day", "wallet_id", "day"),
)
