"""The webhook tables: endpoints, the event outbox, deliveries (one per event and endpoint)
and the attempts made for each delivery."""

import sqlalchemy as sa

from bytespike.db.metadata import BigId, metadata, timestamp

DELIVERY_STATES = ("pending", "succeeded", "failed")

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # The owner is the wallet: an individual's own, or their org's.
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False, index=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(500), nullable=True),
    sa.Column("events", sa.JSON, nullable=False),
    # Fernet token of the `whsec_` secret: it must be recoverable to sign, so it is not hashed.
    sa.Column("secret_sealed", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_reason", sa.String(200), nullable=True),
    timestamp("last_success_at", nullable=True),
    timestamp("created_at"),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    # `msg_…`: the payload id and the webhook-id header, the same on every retry.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    # The exact bytes that are signed and sent, so every retry sends the same body.
    sa.Column("payload", sa.Text, nullable=False),
    timestamp("created_at"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("webhook_events.id"), nullable=False),
    sa.Column(
        "endpoint_id",
        sa.Integer,
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
    # When it may next be claimed; a claim pushes it past the lease, so a crash re-offers it.
    timestamp("next_attempt_at"),
    # Who holds the current lease; only that claimer may record the outcome.
    sa.Column("claim_token", sa.String(32), nullable=True),
    timestamp("created_at"),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column(
        "delivery_id",
        BigId,
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("response_excerpt", sa.String(1024), nullable=True),
    timestamp("attempted_at"),
)
