"""`audit list` / GET /api/v1/admin/audit: the audit log read back, newest first, a page at a
time, through both interfaces on both databases; and the money changes it records (top-ups,
adjustments, thresholds), in the same transaction as the change, so a refusal leaves none."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_user, top_up
from tests.operator_support import Operator

AUDIT = "/api/v1/admin/audit"
MONEY_ACTIONS = ("credits.", "notifications.")


async def audit_page(operator: Operator, **params: Any) -> Any:
    given = {name: value for name, value in params.items() if value is not None}
    cli = ["audit", "list"]
    for name, value in given.items():
        cli += [f"--{name}", str(value)]
    return await operator.ok(cli, "GET", AUDIT, params=given)


async def money_entries(operator: Operator) -> list[dict[str, Any]]:
    """The audit log's money changes, newest first (other changes, such as the user made by
    the factory, are other tests' business)."""
    page = await audit_page(operator, limit=200)
    return [e for e in page["data"] if e["action"].startswith(MONEY_ACTIONS)]


async def change_money(operator: Operator) -> None:
    await operator.ok(
        ["credits", "topup", "--user", "ada", "--usd", "10", "--reference", "inv-1"],
        "POST",
        "/api/v1/admin/credits/topup",
        {"user": "ada", "usd": "10", "reference": "inv-1"},
    )
    await operator.ok(
        ["credits", "adjust", "--user", "ada", "--usd=-2.5", "--reason", "duplicate credit"],
        "POST",
        "/api/v1/admin/credits/adjust",
        {"user": "ada", "usd": "-2.5", "reason": "duplicate credit"},
    )
    await operator.ok(
        ["notifications", "set", "--user", "ada", "--threshold-usd", "3"],
        "PUT",
        "/api/v1/admin/notifications",
        {"user": "ada", "threshold_usd": "3"},
    )


async def test_money_changes_are_audited_newest_first(operator: Operator) -> None:
    await make_user(operator.ctx)
    await change_money(operator)

    threshold, adjustment, payment = await money_entries(operator)

    wallet = str(adjustment["target_id"])
    assert [e["action"] for e in (threshold, adjustment, payment)] == [
        "notifications.set",
        "credits.adjust",
        "credits.topup",
    ]
    assert {e["target_type"] for e in (threshold, adjustment, payment)} == {"wallet"}
    assert {e["target_id"] for e in (threshold, payment)} == {wallet}
    assert threshold["id"] > adjustment["id"] > payment["id"]
    accounts = {"held_usd": 0.0, "spent_usd": 0.0}
    assert payment["before"] == {
        "available_usd": 0.0, "topped_up_usd": 0.0, "adjusted_usd": 0.0, **accounts
    }  # fmt: skip
    assert payment["after"] == {
        "available_usd": 10.0, "topped_up_usd": 10.0, "adjusted_usd": 0.0, **accounts,
        "entry_id": payment["after"]["entry_id"], "amount_usd": 10.0, "reference": "inv-1",
    }  # fmt: skip
    assert adjustment["before"] == {
        "available_usd": 10.0, "topped_up_usd": 10.0, "adjusted_usd": 0.0, **accounts
    }  # fmt: skip
    assert adjustment["after"] == {
        "available_usd": 7.5, "topped_up_usd": 10.0, "adjusted_usd": -2.5, **accounts,
        "entry_id": adjustment["after"]["entry_id"], "amount_usd": -2.5,
        "reason": "duplicate credit", "reference": None,
    }  # fmt: skip
    assert threshold["before"] == {"low_balance_threshold_usd": 5.0}
    assert threshold["after"] == {"low_balance_threshold_usd": 3.0}
    for entry in (threshold, adjustment, payment):
        if operator.interface == "cli":
            assert entry["actor"].startswith("cli")
        else:
            assert entry["actor"] == "admin-api"
        assert entry["request_id"] and entry["created_at"].endswith("Z")


async def test_what_changes_nothing_is_not_audited(operator: Operator) -> None:
    await make_user(operator.ctx)
    await top_up(operator.ctx, "1", user="ada", reference="inv-1")
    before = await money_entries(operator)

    await operator.ok(  # the same payment again: not applied, so nothing changed
        ["credits", "topup", "--user", "ada", "--usd", "1", "--reference", "inv-1"],
        "POST",
        "/api/v1/admin/credits/topup",
        {"user": "ada", "usd": "1", "reference": "inv-1"},
    )
    await operator.fails(  # refused: its transaction, audit entry included, rolled back
        ["credits", "adjust", "--user", "ada", "--usd=-2", "--reason", "too much"],
        "POST",
        "/api/v1/admin/credits/adjust",
        {"user": "ada", "usd": "-2", "reason": "too much"},
        status=400,
    )
    await operator.ok(  # the threshold it already has
        ["notifications", "set", "--user", "ada", "--threshold-usd", "5"],
        "PUT",
        "/api/v1/admin/notifications",
        {"user": "ada", "threshold_usd": "5"},
    )

    assert await money_entries(operator) == before


async def test_the_log_is_read_a_page_at_a_time(operator: Operator) -> None:
    await make_user(operator.ctx)
    await change_money(operator)
    everything = (await audit_page(operator))["data"]
    assert len(everything) >= 4 and (await audit_page(operator))["next_cursor"] is None

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await audit_page(operator, limit=2, cursor=cursor)
        assert len(page["data"]) <= 2
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)
    assert set(seen[0]) == {
        "id", "created_at", "actor", "action", "target_type", "target_id", "before", "after",
        "request_id",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "why"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"cursor": "-1"}, "cursor")],
)
async def test_bad_pages_are_refused(operator: Operator, params: dict[str, Any], why: str) -> None:
    cli = ["audit", "list"]
    for name, value in params.items():
        cli += [f"--{name}={value}"]
    message = await operator.fails(cli, "GET", AUDIT, params=params, status=400)
    assert why in message, message


async def test_the_api_keeps_the_callers_request_id(api_operator: Operator) -> None:
    await make_user(api_operator.ctx)
    response = await api_operator.client.post(
        "/api/v1/admin/credits/adjust",
        json={"user": "ada", "usd": "1", "reason": "welcome credit"},
        headers={**api_operator.admin_headers, "x-request-id": "req-42"},
    )
    assert response.status_code == 200, response.text
    [entry] = await money_entries(api_operator)
    assert (entry["action"], entry["request_id"]) == ("credits.adjust", "req-42")


async def test_the_readable_log_shows_what_changed(cli_operator: Operator) -> None:
    await make_user(cli_operator.ctx)
    await change_money(cli_operator)
    code, out, _ = await cli_operator.run_cli(["audit", "list", "--limit", "3"])
    assert code == 0
    header, threshold, adjustment, payment, more = out.splitlines()
    assert header.split() == ["ID", "TIME", "ACTOR", "ACTION", "TARGET", "CHANGES", "REQUEST"]
    assert "notifications.set" in threshold
    assert "low_balance_threshold_usd: 5.0 -> 3.0" in threshold
    assert "available_usd: 10.0 -> 7.5; adjusted_usd: 0.0 -> -2.5;" in adjustment
    assert "reason: duplicate credit" in adjustment
    assert "credits.topup" in payment and "reference: inv-1" in payment
    assert more.startswith("(more: add --cursor ")
