"""Quota periods start at UTC midnight: daily, on Mondays, on the first of the month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bytespike.billing.quotas import period_start


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("reset", "now", "start"),
    [
        ("daily", utc(2026, 11, 25, 13, 45, 12, 999), utc(2026, 11, 25)),
        ("daily", utc(2026, 11, 25), utc(2026, 11, 25)),
        ("daily", utc(2026, 11, 25, 23, 59, 59, 999_999), utc(2026, 11, 25)),
        ("weekly", utc(2026, 11, 25, 8), utc(2026, 11, 23)),  # a Wednesday
        ("weekly", utc(2026, 11, 23), utc(2026, 11, 23)),  # Monday itself
        ("weekly", utc(2026, 11, 29, 23, 59), utc(2026, 11, 23)),  # Sunday night
        ("weekly", utc(2027, 1, 1, 12), utc(2026, 12, 28)),  # across a year
        ("monthly", utc(2026, 11, 25, 8), utc(2026, 11, 1)),
        ("monthly", utc(2026, 12, 1), utc(2026, 12, 1)),
        ("monthly", utc(2028, 2, 29, 23, 59), utc(2028, 2, 1)),
    ],
)
def test_period_start(reset, now, start):
    assert period_start(reset, now) == start


def test_a_lifetime_quota_has_no_start():
    assert period_start(None, utc(2026, 11, 25)) is None


def test_periods_follow_utc_not_the_callers_zone():
    # 01:30 on Monday 1 March in UTC+2 is still Sunday 28 February in UTC.
    local = datetime(2027, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert period_start("daily", local) == utc(2027, 2, 28)
    assert period_start("weekly", local) == utc(2027, 2, 22)
    assert period_start("monthly", local) == utc(2027, 2, 1)


def test_an_unknown_reset_is_refused():
    with pytest.raises(ValueError):
        period_start("hourly", utc(2026, 11, 25))
