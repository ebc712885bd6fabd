"""`credits adjust` / POST /api/v1/admin/credits/adjust: an operator's corrections, through
both interfaces on both databases, each followed by the ledger invariant."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from bytespike.billing.tables import wallets
from bytespike.money import MAX_BALANCE_MICROS, to_usd_text
from tests.factories import add_member, make_key, make_org, make_user, top_up, wallet_of
from tests.integration.ledger_support import place, problems
from tests.operator_support import Operator

ADJUST = "/api/v1/admin/credits/adjust"
ACCOUNT = "/api/v1/me/account"


def cli_args(body: dict[str, Any]) -> list[str]:
    args = ["credits", "adjust"]
    for name in ("user", "org", "reason", "reference"):
        if name in body:
            args += [f"--{name}", str(body[name])]
    return [*args, f"--usd={body['usd']}"]  # `=`: a negative amount is not an option


async def adjust(operator: Operator, **body: Any) -> Any:
    return await operator.ok(cli_args(body), "POST", ADJUST, body)


async def refused(operator: Operator, status: int, **body: Any) -> str:
    return await operator.fails(cli_args(body), "POST", ADJUST, body, status=status)


async def funded(operator: Operator, usd: str = "10") -> int:
    await make_user(operator.ctx)
    await top_up(operator.ctx, usd, user="ada")
    return await wallet_of(operator.ctx, user="ada")


async def balance(operator: Operator, key: str) -> dict[str, Any]:
    response = await operator.client.get(ACCOUNT, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["balance"]
    return result


async def test_a_credit_raises_available_and_adjusted_but_no_lifetime_figure(
    operator: Operator,
) -> None:
    wallet = await funded(operator)
    key = await make_key(operator.ctx)

    made = await adjust(operator, user="ada", usd="2.5", reason="refund: outage on 3 March")

    assert made["applied"] is True
    assert (made["wallet_id"], made["amount_usd"]) == (wallet, 2.5)
    assert (made["reason"], made["reference"]) == ("refund: outage on 3 March", None)
    assert made["balance"]["available_usd"] == 12.5
    assert made["balance"]["lifetime_adjusted_usd"] == 2.5
    # The account endpoint's lifetime figures stay top-ups and spend; available moves.
    assert await balance(operator, key["key"]) == {
        "available_usd": 12.5,
        "lifetime_topup_usd": 10.0,
        "lifetime_spent_usd": 0.0,
        "low_balance_threshold_usd": 5.0,
        "low_balance_flagged": False,
    }
    assert await problems(operator.ctx, wallet) == []


async def test_a_debit_lowers_available_and_adjusted(operator: Operator) -> None:
    wallet = await funded(operator)

    made = await adjust(operator, user="ada", usd="-3.25", reason="duplicate credit")

    assert (made["applied"], made["amount_usd"]) == (True, -3.25)
    assert made["balance"]["available_usd"] == 6.75
    assert made["balance"]["lifetime_adjusted_usd"] == -3.25
    assert made["balance"]["lifetime_topup_usd"] == 10.0
    assert await problems(operator.ctx, wallet) == []


async def test_a_debit_may_take_exactly_what_is_available(operator: Operator) -> None:
    wallet = await funded(operator)
    made = await adjust(operator, user="ada", usd="-10", reason="closing the account")
    assert made["balance"]["available_usd"] == 0.0
    assert await problems(operator.ctx, wallet) == []


async def test_a_debit_past_available_is_refused_and_says_how_much_there_is(
    operator: Operator,
) -> None:
    wallet = await funded(operator)
    await place(operator.ctx, wallet, "4")  # a call in flight holds 4 of the 10

    message = await refused(operator, 400, user="ada", usd="-6.01", reason="chargeback")

    assert "6.01 USD" in message and "6.00 USD available" in message, message
    assert "4.00 USD more is held" in message, message
    assert await balance_of(operator, wallet) == 6_000_000
    assert await problems(operator.ctx, wallet) == []


async def test_the_api_names_the_refusal(api_operator: Operator) -> None:
    await funded(api_operator, "1")
    response = await api_operator.client.post(
        ADJUST,
        json={"user": "ada", "usd": -2, "reason": "chargeback"},
        headers=api_operator.admin_headers,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "insufficient_available"


async def test_an_adjustment_is_applied_once_per_reference(operator: Operator) -> None:
    wallet = await funded(operator)
    body = {"user": "ada", "usd": "5", "reason": "goodwill", "reference": "TICKET-7"}

    first = await adjust(operator, **body)
    again = await adjust(operator, **{**body, "reason": "goodwill (retried)"})

    assert (first["applied"], again["applied"]) == (True, False)
    assert again["id"] == first["id"]
    assert again["reason"] == "goodwill"  # the entry booked, not the retry's text
    assert again["balance"]["available_usd"] == 15.0
    assert await problems(operator.ctx, wallet) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"usd": "6"}, id="other-amount"),
        pytest.param({"usd": "-5"}, id="debit-instead"),
        pytest.param({"user": "bob"}, id="other-wallet"),
    ],
)
async def test_a_reference_reused_for_another_adjustment_is_a_conflict(
    operator: Operator, change: dict[str, str]
) -> None:
    await funded(operator)
    await make_user(operator.ctx, "bob")
    await top_up(operator.ctx, "10", user="bob")
    body = {"user": "ada", "usd": "5", "reason": "goodwill", "reference": "TICKET-7"}
    await adjust(operator, **body)

    message = await refused(operator, 409, **{**body, **change})

    assert "TICKET-7" in message and "different adjustment" in message, message


async def test_a_top_up_reference_cannot_be_reused_for_an_adjustment(operator: Operator) -> None:
    await make_user(operator.ctx)
    await top_up(operator.ctx, "10", user="ada", reference="invoice-1")
    message = await refused(
        operator, 409, user="ada", usd="10", reason="same money?", reference="invoice-1"
    )
    assert "different top-up" in message, message


@pytest.mark.parametrize(
    ("body", "why"),
    [
        pytest.param({"usd": "0", "reason": "nothing"}, "cannot be zero", id="zero"),
        pytest.param({"usd": "1", "reason": "   "}, "reason", id="blank-reason"),
        pytest.param({"usd": "1.0000001", "reason": "r"}, "6 decimal", id="too-precise"),
        pytest.param({"usd": "lots", "reason": "r"}, "usd", id="not-money"),
        pytest.param({"usd": "1", "reason": "r" * 501}, "500", id="long-reason"),
    ],
)
async def test_bad_adjustments_are_refused(
    operator: Operator, body: dict[str, str], why: str
) -> None:
    await funded(operator)
    message = await refused(operator, 400, user="ada", **body)
    assert why in message, message


async def test_an_org_wallet_is_adjusted_and_an_enterprise_user_has_none(
    operator: Operator,
) -> None:
    await make_org(operator.ctx)
    await make_user(operator.ctx, "bob", tier="enterprise")
    await add_member(operator.ctx, "Dosia AI", "bob")
    await top_up(operator.ctx, "3", org="Dosia AI")

    made = await adjust(operator, org="Dosia AI", usd="1.5", reason="migration credit")
    message = await refused(operator, 400, user="bob", usd="1", reason="r")

    assert made["balance"]["available_usd"] == 4.5
    assert "enterprise" in message and "--org" in message, message
    assert await problems(operator.ctx, await wallet_of(operator.ctx, org="Dosia AI")) == []


async def test_a_credit_past_the_maximum_balance_is_refused(operator: Operator) -> None:
    wallet = await funded(operator)
    room = to_usd_text(MAX_BALANCE_MICROS - 10_000_000)
    await adjust(operator, user="ada", usd=room, reason="fill it up")

    message = await refused(operator, 400, user="ada", usd="0.000001", reason="one more micro")

    assert "maximum balance" in message and "a credit of 0.000001 USD" in message, message
    assert await problems(operator.ctx, wallet) == []


async def test_a_debit_to_the_threshold_pages_and_a_credit_rearms(operator: Operator) -> None:
    wallet = await funded(operator)

    async def armed() -> bool:
        async with operator.ctx.db.read() as conn:
            query = sa.select(wallets.c.low_balance_armed).where(wallets.c.id == wallet)
            return bool((await conn.execute(query)).scalar_one())

    await adjust(operator, user="ada", usd="-5", reason="debit to the threshold")
    assert await armed() is False  # fired: settled money is at the 5 USD threshold
    await adjust(operator, user="ada", usd="0.01", reason="credit over it")
    assert await armed() is True


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", ADJUST, {"user": "ada", "usd": "1", "reason": "r"}),
        ("GET", "/api/v1/admin/ledger/entries?user=ada", None),
        ("GET", "/api/v1/admin/ledger/verify", None),
        ("GET", "/api/v1/admin/audit", None),
    ],
)
async def test_the_routes_need_the_admin_token(
    api_operator: Operator, method: str, path: str, body: dict[str, str] | None
) -> None:
    wallet = await funded(api_operator)
    wrong = {"Authorization": "Bearer not-the-token"}
    response = await api_operator.client.request(method, path, json=body, headers=wrong)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "authentication_error"
    assert (await balance_of(api_operator, wallet)) == 10_000_000  # nothing moved


async def balance_of(operator: Operator, wallet: int) -> int:
    async with operator.ctx.db.read() as conn:
        query = sa.select(wallets.c.available_micros).where(wallets.c.id == wallet)
        return int((await conn.execute(query)).scalar_one())
