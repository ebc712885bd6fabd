"""stored_responses: the Responses API's stored responses (`store`), one row each."""

import sqlalchemy as sa

from bytespike.db.metadata import metadata, timestamp

# Its foreign keys are enforced on SQLite only: on PostgreSQL each was a trigger and a share
# lock per stored response, most of its insert's time (migration 0018). Nothing deletes a
# user, key or wallet, and the row is written for the call's own authenticated key.
stored_responses = sa.Table(
    "stored_responses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # `resp_…`, minted by the gateway
    # The owner: any key of this user may read, delete or continue it.
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=False),
    sa.Column("wallet_id", sa.Integer, sa.ForeignKey("wallets.id"), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    # JSON text: every input item the model read (replayed ones included), and the Response
    # object as answered (its `output` holds the output items).
    sa.Column("input_items", sa.Text, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    timestamp("created_at"),
    # The sweeper finds the expired ones by age (responses/sweeper.py).
    sa.Index("ix_stored_responses_created_at", "created_at"),
)
