"""Which failures mean "the database is unavailable" (503, retry) and which are bugs (500):
the drivers' own exceptions, bare and as SQLAlchemy wraps them."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
import sqlalchemy as sa

from bytespike.db import outage
from bytespike.errors import NotFound, ServiceUnavailable


def wrapped(orig: BaseException, *, invalidated: bool = False) -> sa.exc.DBAPIError:
    """As SQLAlchemy raises a driver's exception."""
    error = sa.exc.DBAPIError.instance(
        "SELECT 1", {}, orig, Exception, connection_invalidated=invalidated
    )
    error.__cause__ = orig
    return error


UNAVAILABLE = [
    pytest.param(ConnectionRefusedError(111, "Connect call failed"), id="refused"),
    pytest.param(ConnectionResetError(104, "reset by peer"), id="reset"),
    pytest.param(TimeoutError(), id="connect-timeout"),
    pytest.param(sa.exc.TimeoutError("QueuePool limit reached"), id="pool-timeout"),
    pytest.param(asyncpg.exceptions.CannotConnectNowError("shutting down"), id="pg-57P03"),
    pytest.param(asyncpg.exceptions.AdminShutdownError("terminating"), id="pg-57P01"),
    pytest.param(asyncpg.exceptions.CrashShutdownError("crash"), id="pg-57P02"),
    pytest.param(asyncpg.exceptions.TooManyConnectionsError("too many"), id="pg-53300"),
    pytest.param(asyncpg.exceptions.ConnectionDoesNotExistError("closed"), id="pg-08003"),
    pytest.param(asyncpg.exceptions.ConnectionFailureError("failed"), id="pg-08006"),
    pytest.param(asyncpg.exceptions.InterfaceError("connection is closed"), id="pg-closed"),
    pytest.param(wrapped(asyncpg.exceptions.AdminShutdownError("x")), id="wrapped-57P01"),
    pytest.param(
        wrapped(asyncpg.exceptions.InterfaceError("connection is closed"), invalidated=True),
        id="wrapped-invalidated",
    ),
    pytest.param(sqlite3.OperationalError("database is locked"), id="sqlite-locked"),
    pytest.param(wrapped(sqlite3.OperationalError("database is locked")), id="wrapped-locked"),
    pytest.param(sqlite3.OperationalError("unable to open database file"), id="sqlite-open"),
    pytest.param(sqlite3.OperationalError("disk I/O error"), id="sqlite-io"),
]

BUGS = [
    pytest.param(ValueError("bad"), id="value-error"),
    pytest.param(sqlite3.OperationalError("no such table: nope"), id="sqlite-no-table"),
    pytest.param(wrapped(sqlite3.OperationalError("near x: syntax error")), id="sqlite-syntax"),
    pytest.param(asyncpg.exceptions.UniqueViolationError("duplicate"), id="pg-unique"),
    pytest.param(asyncpg.exceptions.QueryCanceledError("statement timeout"), id="pg-57014"),
    pytest.param(wrapped(asyncpg.exceptions.UndefinedTableError("no table")), id="pg-42P01"),
    pytest.param(
        asyncpg.exceptions.InterfaceError("another operation is in progress"), id="pg-misuse"
    ),
    pytest.param(sa.exc.NoResultFound(), id="no-result"),
]


@pytest.mark.parametrize("failure", UNAVAILABLE)
def test_an_outage_is_reported_as_service_unavailable(failure: BaseException) -> None:
    assert outage.unavailable(failure)
    reported = outage.as_reported(failure)
    assert isinstance(reported, ServiceUnavailable)
    assert reported.status == 503 and reported.headers["Retry-After"].isdigit()
    assert reported.__cause__ is failure


@pytest.mark.parametrize("failure", BUGS)
def test_any_other_database_error_is_left_alone(failure: BaseException) -> None:
    assert not outage.unavailable(failure)
    assert outage.as_reported(failure) is failure


def test_a_refusal_passes_through_unchanged() -> None:
    refusal = NotFound("no such thing")
    assert outage.as_reported(refusal) is refusal


def test_guarded_raises_service_unavailable_from_the_outage() -> None:
    with pytest.raises(ServiceUnavailable) as raised, outage.guarded():
        raise ConnectionRefusedError(111, "Connect call failed")
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


def test_guarded_lets_a_bug_through() -> None:
    with pytest.raises(KeyError), outage.guarded():
        raise KeyError("x")
