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


@given(st.lists(st.datetimes(timezones=st.none() | _ZONES), min_size=1, max_size=6))
def test_datetimes_written_in_turn_each_get_their_own_text(moments: list[datetime]) -> None:
    """The processor remembers the last datetime it wrote: each value in a run of them,
    the same object again or an equal one, is still written as itself."""
    assert _OURS is not None and _SQLALCHEMY is not None
    for moment in [*moments, moments[0], moments[-1].replace()]:
        assert _OURS(moment) == _SQLALCHEMY(moment)


@given(st.dates())
def test_a_date_in_a_datetime_column_is_stored_as_sqlalchemy_stores_it(day: date) -> None:
    assert _OURS is not None and _SQLALCHEMY is not None
    assert _OURS(day) == _SQLALCHEMY(day)


def test_a_plans_arguments_are_its_placeholders_values_in_order_processed_by_type() -> None:
    """Each placeholder's value by name (a name used twice, twice), a datetime written as
    SQLAlchemy writes it, None left as None, and a literal SQLAlchemy bound itself."""
    table = sa.table("t", sa.column("a", sa.Integer), sa.column("at", sa.DateTime()))
    moment = datetime(2026, 11, 27, 3, 4, 5, 6)
    statement = sa.select(table.c.a).where(
        table.c.a == sa.bindparam("x"),
        table.c.at == sa.bindparam("when", type_=sa.DateTime()),
        table.c.a != sa.bindparam("x"),
        table.c.a >= 0,
    )
    plan = direct.Plans(_DIALECT).get(statement, {"x": 7, "when": moment})
    assert list(plan.arguments({"x": 7, "when": moment})) == [7, "2026-11-27 03:04:05.000006", 7, 0]
    assert list(plan.arguments({"x": 8, "when": None})) == [8, None, 8, 0]
    one = direct.Plans(_DIALECT).get(sa.select(sa.bindparam("y")), {"y": "v"})
    assert list(one.arguments({"y": "v"})) == ["v"]
    none = direct.Plans(_DIALECT).get(sa.select(sa.literal_column("1")), {})
    assert list(none.arguments({})) == []


def test_a_hot_statement_is_known_by_identity_and_one_derived_from_it_is_not() -> None:
    statement = direct.hot(sa.select(sa.literal(1)))
    assert id(statement) in direct.HOT
    assert id(statement.where(sa.true())) not in direct.HOT
    assert id(sa.select(sa.literal(1))) not in direct.HOT
