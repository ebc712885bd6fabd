"""The group-commit writer's direct path (db/direct.py) stores what SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from bytespike.db import direct

_DIALECT = sqlite.dialect()
_OURS = direct._processor(sa.DateTime(timezone=True), _DIALECT)
_SQLALCHEMY = sa.DateTime(timezone=True).dialect_impl(_DIALECT).bind_processor(_DIALECT)
_ZONES = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=st.none() | st.just(UTC) | _ZONES))
def test_a_datetime_is_stored_as_sqlalchemy_stores_it(moment: datetime) -> None:
    assert _OURS is not None and _SQLALCHEMY is not None
    assert _OURS(moment) == _SQLALCHEMY(moment)


@given(st.dates())
def test_a_date_in_a_datetime_column_is_stored_as_sqlalchemy_stores_it(day: date) -> None:
    assert _OURS is not None and _SQLALCHEMY is not None
    assert _OURS(day) == _SQLALCHEMY(day)


def test_a_hot_statement_is_known_by_identity_and_one_derived_from_it_is_not() -> None:
    statement = direct.hot(sa.select(sa.literal(1)))
    assert direct.is_hot(statement)
    assert not direct.is_hot(statement.where(sa.true()))
    assert not direct.is_hot(sa.select(sa.literal(1)))
