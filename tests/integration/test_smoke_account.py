from tests.factories import make_key, make_user, top_up


async def test_account_endpoint_smoke(ctx, client):
    await make_user(ctx)
    await top_up(ctx, "250", user="ada")
    key = await make_key(ctx)
    r = await client.get("/api/v1/me/account", headers={"Authorization": f"Bearer {key['key']}"})
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["available_usd"] == 250.0
