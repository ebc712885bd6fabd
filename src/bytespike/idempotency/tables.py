"""idempotency_keys: each `Idempotency-Key` an API key used on a metered call, with the
answer it got (idempotency/claims.py)."""

import sqlalchemy as sa

from bytespike.db.metadata import metadata, timestamp

STATES = ("running", "answered", "spent")

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # The scope: the API key by id (a rolled key keeps its claims), then the client's key.
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    # SHA-256 (hex) of what the request asked: its path, query (but a key in it) and body.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # Drawn by the call that claimed the row: only that call may answer or release it (a
    # call that outlived its claim finds another token there and leaves the row alone).
    sa.Column("token", sa.String(32), nullable=False),
    # running: the call is in flight; answered: `answer` is the reply; spent: billed, but
    # nothing to replay (the answer was too large to keep, or the call failed after billing).
    sa.Column("state", sa.String(16), nullable=False),
    # The answer as first sent: HTTP status, Content-Type, body bytes (a stream's events).
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("content_type", sa.String(200), nullable=True),
    sa.Column("answer", sa.LargeBinary, nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),  # the first request's id
    timestamp("created_at"),
    # running: a hold's TTL after the claim; otherwise the end of the retention. Past it
    # the row is as good as absent (a request may claim it again) until the sweep.
    timestamp("expires_at"),
    sa.CheckConstraint("state IN ('running', 'answered', 'spent')", name="state"),
    sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
)
