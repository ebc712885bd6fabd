"""The operator harness drives both interfaces against the same database."""

from __future__ import annotations

from tests.operator_support import Operator


async def test_a_user_created_either_way_is_refused_twice(operator: Operator) -> None:
    made = await operator.ok(
        ["users", "create", "--username", "ada", "--email", "ada@example.com"],
        "POST",
        "/api/v1/admin/users",
        {"username": "ada", "email": "ada@example.com"},
    )
    assert made["username"] == "ada"
    message = await operator.fails(
        ["users", "create", "--username", "ada", "--email", "ada@example.com"],
        "POST",
        "/api/v1/admin/users",
        {"username": "ada", "email": "ada@example.com"},
        status=409,
    )
    assert "taken" in message
