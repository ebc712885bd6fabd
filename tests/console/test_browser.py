"""The console in a real browser: Debian's Chromium driven by Playwright for Python, against
a gateway served on loopback with fake upstreams. Without /usr/bin/chromium these tests
skip with the reason, except in CI (CI=true), where they fail. They run on SQLite only: the
HTTP-level tests beside them cover both databases."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from bytespike.context import Context
from tests.console.support import PASSWORD, person
from tests.e2e.gateway_support import gateway, upstreams
from tests.factories import add_member, make_key, make_org, top_up
from tests.services import IN_CI

CHROMIUM = os.environ.get("BYTESPIKE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make test does)"
    if IN_CI:
        pytest.fail(f"{message}; CI must run the browser tests")
    pytest.skip(message)


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def url(ctx: Context) -> AsyncIterator[str]:
    async with upstreams() as fakes, gateway(ctx, fakes) as served:
        yield served


class Watched:
    """A page and every console error and uncaught exception it had."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


async def signed_in(browser: Browser, url: str, login: str) -> Watched:
    page = await (await browser.new_context()).new_page()
    watched = Watched(page)
    await page.goto(f"{url}/console/")
    assert page.url == f"{url}/console/login?next=/console/"
    await page.get_by_label("Username or email").fill(login)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{url}/console/")
    return watched


async def test_sign_in_and_out(ctx: Context, browser: Browser, url: str) -> None:
    await person(ctx, "ada")
    watched = await signed_in(browser, url, "ada")
    page = watched.page
    assert await page.locator("h1").inner_text() == "Dashboard"
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "bytespike_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{url}/console/login")
    await page.goto(f"{url}/console/keys")
    assert page.url.startswith(f"{url}/console/login")
    assert watched.errors == []


async def test_a_form_without_its_csrf_token_is_refused(
    ctx: Context, browser: Browser, url: str
) -> None:
    await person(ctx, "ada")
    page = (await signed_in(browser, url, "ada")).page
    await page.goto(f"{url}/console/keys")
    await page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.value = 'forged')"
    )
    async with page.expect_response(f"{url}/console/keys") as answer:
        await page.get_by_role("button", name="Create key").click()
    assert (await answer.value).status == 403
    assert "CSRF" in await page.locator("main").inner_text()


async def test_the_dashboard_payload_is_the_apis(ctx: Context, browser: Browser, url: str) -> None:
    await person(ctx, "ada")
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "admin")
    await top_up(ctx, "31.40", user="ada")
    key = await make_key(ctx, "ada", models=[("gpt-5-4", 50_000_000), ("mock", None)])
    page = (await signed_in(browser, url, "ada")).page
    shown = await page.locator("#account-payload").text_content()
    async with httpx.AsyncClient() as client:
        api = await client.get(
            f"{url}/api/v1/me/account", headers={"Authorization": f"Bearer {key['key']}"}
        )
    assert shown is not None and shown.encode() == api.content
    assert await page.locator("#available").inner_text() == "$31.40"


async def test_a_key_made_in_the_console_calls_the_model_api(
    ctx: Context, browser: Browser, url: str
) -> None:
    await person(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    watched = await signed_in(browser, url, "ada")
    page = watched.page
    await page.get_by_role("link", name="Keys").click()
    await page.get_by_label("Name").fill("from the console")
    for model in ("claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro"):
        await page.get_by_role("checkbox", name=model).uncheck()
    await page.get_by_role("button", name="Create key").click()
    secret = (await page.locator("#new-key-secret").inner_text()).strip()
    assert secret.startswith("bsk-")
    assert await page.get_by_role("button", name="Copy").is_visible()
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "mock", "messages": [{"role": "user", "content": "Hello there"}]},
        )
        refused = await client.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "gpt-5-4", "messages": [{"role": "user", "content": "Hi"}]},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "[mock] You said: Hello there"
    assert refused.status_code == 403  # not on the roster chosen in the console
    await page.goto(f"{url}/console/")
    assert "mock" in await page.locator("#calls-h + div table").inner_text()
    assert await page.locator("#spend-chart.drawn canvas").count() == 1  # uPlot drew it
    assert watched.errors == []


async def test_the_threshold_set_here_flags_the_balance_in_the_api(
    ctx: Context, browser: Browser, url: str
) -> None:
    await person(ctx, "ada")
    await top_up(ctx, "31.40", user="ada")
    key = await make_key(ctx, "ada")
    page = (await signed_in(browser, url, "ada")).page

    async def flagged() -> bool:
        async with httpx.AsyncClient() as client:
            answer = await client.get(
                f"{url}/api/v1/me/account", headers={"Authorization": f"Bearer {key['key']}"}
            )
        return bool(answer.json()["balance"]["low_balance_flagged"])

    assert await flagged() is False
    await page.goto(f"{url}/console/account/notifications")
    await page.get_by_label("Threshold in USD").fill("50")
    await page.get_by_role("button", name="Save threshold").click()
    await page.get_by_text("Threshold saved.").wait_for()
    assert await flagged() is True
    await page.goto(f"{url}/console/")
    assert await page.locator("#low-balance").is_visible()


async def test_a_member_is_refused_from_the_admin_area(
    ctx: Context, browser: Browser, url: str
) -> None:
    await person(ctx, "cy", tier="enterprise")
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "cy", "member")
    page = (await signed_in(browser, url, "cy")).page
    assert await page.get_by_role("link", name="Admin").count() == 0
    answer = await page.goto(f"{url}/console/admin/")
    assert answer is not None and answer.status == 403
    assert "for operators" in await page.locator("main").inner_text()


USER_PAGES = [
    "/console/",
    "/console/keys",
    "/console/keys/{key}",
    "/console/usage",
    "/console/usage?model=mock",
    "/console/account/notifications",
    "/console/org",
]
ADMIN_PAGES = [
    "/console/admin/",
    "/console/admin/users",
    "/console/admin/orgs",
    "/console/admin/wallets?org=Dosia%20AI",
    "/console/admin/keys",
    "/console/admin/ledger?user=ada",
    "/console/admin/audit",
    "/console/admin/models",
    "/console/admin/health",
]


@pytest.mark.parametrize(
    ("who", "pages"),
    [("ada", USER_PAGES), ("bob", USER_PAGES), ("root", USER_PAGES + ADMIN_PAGES)],
    ids=["user", "org-admin", "operator"],
)
async def test_every_page_renders_without_console_errors(
    ctx: Context, browser: Browser, url: str, who: str, pages: list[str]
) -> None:
    await person(ctx, "ada")
    await person(ctx, "bob", tier="enterprise")
    await person(ctx, "root", operator=True)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "bob", "admin")
    await top_up(ctx, "20", user="ada")
    await top_up(ctx, "20", org="Dosia AI")
    own = {
        "ada": await make_key(ctx, "ada"),
        "bob": await make_key(ctx, "bob", org="Dosia AI"),
        "root": await make_key(ctx, "root"),
    }
    watched = await signed_in(browser, url, who)
    page = watched.page
    for path in pages:
        answer = await page.goto(url + path.format(key=own[who]["id"]))
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        assert len(await answer.body()) < 100_000, path
        await page.wait_for_load_state("networkidle")
        assert watched.errors == [], (path, watched.errors)


async def test_the_shipped_model_catalog_fits_a_desktop_width(
    ctx: Context, browser: Browser, url: str
) -> None:
    await person(ctx, "root", operator=True)
    page = (await signed_in(browser, url, "root")).page
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(f"{url}/console/admin/models")
    widths = await page.locator(".table-wrap").evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert widths[0] <= widths[1], f"the table scrolls sideways: {widths}"
    assert await page.get_by_role("columnheader", name="Max output").is_visible()
