"""The OpenAPI document describes what the account endpoint really returns."""

from bytespike.accounts.schemas import Account
from bytespike.api.errors import ErrorResponse
from tests.factories import add_member, make_key, make_org, make_user, top_up


async def test_documented_account_and_error_shapes_match_real_responses(ctx, client):
    await make_user(ctx)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "owner")
    await top_up(ctx, "12.5", user="ada")
    key = await make_key(ctx, models=[("gpt-5-4", 50_000_000)])

    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/me/account"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Account"
    }
    assert {"401", "403", "429"} <= set(operation["responses"])

    ok = await client.get("/api/v1/me/account", headers={"x-api-key": key["key"]})
    account = Account.model_validate(ok.json(), strict=True)
    assert account.model_dump() == ok.json()  # nothing undocumented, nothing missing

    denied = await client.get("/api/v1/me/account")
    assert ErrorResponse.model_validate(denied.json()).error.type == "authentication_error"
