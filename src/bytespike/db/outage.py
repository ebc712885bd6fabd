"""What counts as "the database is unavailable", for every path that talks to it: through
SQLAlchemy (db/engine.py), and straight on the drivers (db/batch.py, db/direct.py), where
asyncpg's and sqlite3's own exceptions surface unwrapped.

Failure policy: an outage becomes ServiceUnavailable (503 with Retry-After, in each route's
own envelope), so clients retry instead of reporting a bug; nothing was written, since the
transaction did not commit. Every other database error is left alone: a 500 is a bug.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from bytespike.errors import BytespikeError, ServiceUnavailable

# PostgreSQL unreachable or refusing work for now, by SQLSTATE (asyncpg's exceptions carry
# it; matching codes keeps asyncpg out of SQLite deployments): connection exceptions (class
# 08, a connection lost mid-operation among them), terminated by an administrator or a
# crash (57P01, 57P02), starting up or shutting down (57P03), out of connections (53300).
_SQLSTATE_CLASSES = ("08",)
_SQLSTATES = ("57P01", "57P02", "57P03", "53300")
# SQLite: another writer past the busy timeout, or the file cannot be reached. Its other
# OperationalErrors ("no such table", syntax) are bugs, not outages.
_SQLITE = ("database is locked", "database table is locked", "unable to open", "disk i/o error")
_DEPTH = 5  # how far down a chain of wrapped exceptions the driver's own may sit


def unavailable(exc: BaseException) -> bool:
    """Whether `exc`, or the driver exception it wraps, means the database is unavailable."""
    seen: BaseException | None = exc
    for _ in range(_DEPTH):
        if seen is None:
            return False
        if _says_unavailable(seen):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def _says_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.TimeoutError | OSError):
        return True  # no pooled connection came free in time; refused, reset, unreachable
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True  # SQLAlchemy saw the connection die under the statement
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_SQLSTATE_CLASSES) or sqlstate in _SQLSTATES
    if type(exc).__name__ == "InterfaceError":
        # asyncpg's on a connection it already knows is gone (the test SQLAlchemy's asyncpg
        # dialect uses too); its other InterfaceErrors are misuse, not an outage.
        return "connection is closed" in str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).lower().startswith(_SQLITE)
    return False


def as_reported(exc: BaseException) -> BaseException:
    """`exc` as callers should see it: ServiceUnavailable for an outage, else itself. Not
    logged here: every request during an outage would log it, and the access log already
    records each 503; the driver's error stays reachable as `__cause__`."""
    if isinstance(exc, BytespikeError) or not unavailable(exc):
        return exc
    reported = ServiceUnavailable()
    reported.__cause__ = exc
    return reported


@contextmanager
def guarded() -> Iterator[None]:
    """Raise ServiceUnavailable instead of an outage's own exception."""
    try:
        yield
    except Exception as exc:
        reported = as_reported(exc)
        if reported is exc:
            raise
        raise reported from exc
