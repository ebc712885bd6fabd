"""Which texts are ids a row can have: plain ASCII digits within the column's range."""

from __future__ import annotations

import pytest

from bytespike.db.metadata import MAX_BIG_ID, MAX_ID, stored_id


@pytest.mark.parametrize(
    ("text", "big", "expected"),
    [
        ("1", False, 1),
        (str(MAX_ID), False, MAX_ID),
        (str(MAX_ID + 1), False, None),
        (str(MAX_ID + 1), True, MAX_ID + 1),
        (str(MAX_BIG_ID), True, MAX_BIG_ID),
        (str(MAX_BIG_ID + 1), True, None),
        ("²", True, None),
        ("", False, None),
        ("-1", False, None),
        ("9" * 5000, True, None),
    ],
)
def test_stored_id(text: str, big: bool, expected: int | None) -> None:
    assert stored_id(text, big=big) == expected
