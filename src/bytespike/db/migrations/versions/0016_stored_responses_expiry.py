"""stored_responses: indexed by when they were stored, for a sweeper (issue 13)

A stored response used to be written with a purge of its owner's expired ones, found by
(user_id, created_at). On PostgreSQL a batch's responses now go as one insert statement
(responses/repo.py's KEEP_MANY), and the expired ones go in a background sweep
(responses/sweeper.py) that finds them by `created_at` alone: the index it needs replaces
the one only the purge read.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_stored_responses_created_at", "stored_responses", ["created_at"])
    op.drop_index("ix_stored_responses_user_time", table_name="stored_responses")


def downgrade() -> None:
    op.create_index("ix_stored_responses_user_time", "stored_responses", ["user_id", "created_at"])
    op.drop_index("ix_stored_responses_created_at", table_name="stored_responses")
