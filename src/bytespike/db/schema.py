"""Imports every domain's tables so the shared metadata is complete (for Alembic and tests)."""

from bytespike.accounts import tables as _accounts  # noqa: F401
from bytespike.audit import tables as _audit  # noqa: F401
from bytespike.billing import tables as _billing  # noqa: F401
from bytespike.console import tables as _console  # noqa: F401
from bytespike.db.metadata import metadata
from bytespike.idempotency import tables as _idempotency  # noqa: F401
from bytespike.keys import tables as _keys  # noqa: F401
from bytespike.orgs import tables as _orgs  # noqa: F401
from bytespike.responses import tables as _responses  # noqa: F401
from bytespike.usage import tables as _usage  # noqa: F401
from bytespike.webhooks import tables as _webhooks  # noqa: F401

__all__ = ["metadata"]
