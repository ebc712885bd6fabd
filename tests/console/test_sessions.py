"""Signing in and out, the cookie's flags, CSRF refusals, sign-in limits, sessions ended
by suspension and by a new password, invites, and the headers every page carries."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bytespike.accounts import service as accounts
from bytespike.console import credentials, sessions
from bytespike.context import Context
from tests.conftest import FakeClock
from tests.console.support import PASSWORD, csrf_of, person, post_form, sign_in


async def test_root_redirects_to_the_console(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert answer.status_code == 302
    assert answer.headers["location"] == "/console/"


async def test_pages_need_a_session(client: httpx.AsyncClient) -> None:
    answer = await client.get("/console/keys")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/keys"


async def test_sign_in_by_username_or_email_and_out(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    answer = await sign_in(client, "ada")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert "bytespike_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # served over plain HTTP here
    assert (await client.get("/console/")).status_code == 200

    page = await client.get("/console/")
    out = await client.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert (await client.get("/console/")).status_code == 303

    by_email = await sign_in(client, "ADA@dosia.ai")
    assert by_email.status_code == 303


async def test_the_cookie_is_secure_over_https(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    secure = httpx.AsyncClient(transport=client._transport, base_url="https://bytespike.test")
    async with secure:
        answer = await sign_in(secure, "ada")
    assert "Secure" in answer.headers["set-cookie"]


async def test_a_wrong_password_is_refused_with_the_form(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    answer = await sign_in(client, "ada", "not the password")
    assert answer.status_code == 401
    assert "wrong username or password" in answer.text
    assert 'name="username"' in answer.text and 'value="ada"' in answer.text
    unknown = await sign_in(client, "nobody", "whatever at all")
    assert unknown.status_code == 401 and "wrong username or password" in unknown.text


async def test_a_user_without_a_password_cannot_sign_in(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    from tests.factories import make_user

    await make_user(ctx, "bob")
    assert (await sign_in(client, "bob", "")).status_code == 401


async def test_posts_without_the_csrf_token_are_refused(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    await client.get("/console/login")  # the anonymous token's cookie
    no_token = await client.post("/console/login", data={"username": "ada", "password": PASSWORD})
    assert no_token.status_code == 403
    assert (await sign_in(client, "ada")).status_code == 303

    for path in ("/console/keys", "/console/account/notifications", "/console/logout"):
        refused = await client.post(path, data={"name": "sneaky", "action": "threshold"})
        assert refused.status_code == 403, path
        wrong = await client.post(path, data={"csrf_token": "forged", "name": "sneaky"})
        assert wrong.status_code == 403, path
    keys = await client.get("/console/keys")
    assert "sneaky" not in keys.text
    assert (await client.get("/console/")).status_code == 200  # still signed in


async def test_sign_in_is_rate_limited(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    for _ in range(sessions.USER_LIMIT):
        assert (await sign_in(client, "ada", "wrong password!")).status_code == 401
    limited = await sign_in(client, "ada")  # even the right password, for now
    assert limited.status_code == 429
    assert "too many failed sign-ins" in limited.text
    ctx.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert (await sign_in(client, "ada")).status_code == 303


async def test_suspending_a_user_ends_their_sessions(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    await sign_in(client, "ada")
    assert (await client.get("/console/")).status_code == 200
    await accounts.set_suspended(ctx, "ada", suspended=True)
    assert (await client.get("/console/")).status_code == 303
    refused = await sign_in(client, "ada")
    assert refused.status_code == 403 and "suspended" in refused.text


async def test_a_new_password_ends_sessions(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    await sign_in(client, "ada")
    await credentials.set_password(ctx, "ada", "a whole new password")
    assert (await client.get("/console/")).status_code == 303
    assert (await sign_in(client, "ada")).status_code == 401
    assert (await sign_in(client, "ada", "a whole new password")).status_code == 303


async def test_sessions_end_when_idle(
    ctx: Context, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    await sign_in(client, "ada")
    clock.advance(hours=11)
    assert (await client.get("/console/")).status_code == 200  # seen: the idle clock restarts
    clock.advance(hours=11)
    assert (await client.get("/console/")).status_code == 200
    clock.advance(hours=13)
    assert (await client.get("/console/")).status_code == 303


async def test_an_invite_sets_a_password_once(
    ctx: Context, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    from tests.factories import make_user

    await make_user(ctx, "cy")
    invite = await credentials.invite(ctx, "cy")
    assert invite["url"].startswith("http://127.0.0.1:8080/console/invite?token=")
    path = invite["url"].removeprefix("http://127.0.0.1:8080")
    page = await client.get(path)
    assert page.status_code == 200 and "Welcome, cy" in page.text
    token = path.split("token=")[1]
    differ = await client.post(
        "/console/invite",
        data={
            "csrf_token": csrf_of(page.text),
            "token": token,
            "password": "one long password",
            "password_again": "another password",
        },
    )
    assert differ.status_code == 400 and "differ" in differ.text
    done = await client.post(
        "/console/invite",
        data={
            "csrf_token": csrf_of(page.text),
            "token": token,
            "password": "one long password",
            "password_again": "one long password",
        },
    )
    assert done.status_code == 303
    assert (await client.get("/console/")).status_code == 200  # signed in
    again = await client.get(path)
    assert again.status_code == 400 and "unknown, used or expired" in again.text

    late = await credentials.invite(ctx, "cy")
    clock.advance(days=7, seconds=1)
    expired = await client.get(late["url"].removeprefix("http://127.0.0.1:8080"))
    assert expired.status_code == 400


async def test_every_console_answer_has_the_security_headers(
    ctx: Context, client: httpx.AsyncClient
) -> None:
    await person(ctx, "ada")
    await sign_in(client, "ada")
    for path in ("/console/login", "/console/", "/console/nowhere", "/console/static/console.css"):
        answer = await client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/console/nowhere")).status_code == 404
    assert (await client.get("/console/")).headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/console/login", "/console/"])
async def test_pages_are_small(ctx: Context, client: httpx.AsyncClient, path: str) -> None:
    await person(ctx, "ada")
    await sign_in(client, "ada")
    assert len((await client.get(path)).content) < 100_000


async def test_cli_commands(ctx: Context) -> None:
    from tests.console.support import cli
    from tests.factories import make_user

    await make_user(ctx, "ada")
    url = ctx.settings.database_url
    code, out, err = await asyncio.to_thread(
        cli, url, ["users", "set-password", "ada", "--password-stdin"], "a fine password\n"
    )
    assert code == 0, err
    assert "password set for ada" in out
    code, out, err = await asyncio.to_thread(cli, url, ["users", "invite", "ada", "--json"])
    assert code == 0 and '"url":"http://127.0.0.1:8080/console/invite?token=' in out
    code, out, _ = await asyncio.to_thread(cli, url, ["users", "grant-operator", "ada"])
    assert out.strip() == "ada is an operator"
    code, out, _ = await asyncio.to_thread(cli, url, ["users", "revoke-operator", "ada"])
    assert out.strip() == "ada is not an operator"
    code, _, err = await asyncio.to_thread(
        cli, url, ["users", "set-password", "ada", "--password-stdin"], "short\n"
    )
    assert code == 1 and "at least 10 characters" in err
    from bytespike.audit import service as audit

    actions = [e["action"] for e in (await audit.list_entries(ctx))["data"]]
    assert actions[:4] == [
        "user.revoke_operator",
        "user.grant_operator",
        "user.invite",
        "user.set_password",
    ]
    assert all(e["actor"].startswith("cli") for e in (await audit.list_entries(ctx))["data"][:4])


async def test_post_form_helper_keeps_the_session(ctx: Context, client: httpx.AsyncClient) -> None:
    await person(ctx, "ada")
    await sign_in(client, "ada")
    answer = await post_form(client, "/console/keys", {"name": "mine", "model": ["mock"]})
    assert answer.status_code == 200 and 'id="new-key-secret"' in answer.text
