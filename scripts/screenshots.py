"""Screenshots of every console page, at 360 px and 1280 px wide, into docs/console/.

    .venv/bin/python scripts/screenshots.py [--out docs/console] [--only NAME...]

It builds a throw-away gateway (SQLite in a temp directory, a catalog whose models are all
served by the built-in mock provider), fills it with a month of calls through the real
model API, signs in as a user, an org admin and an operator in Debian's Chromium (driven
by Playwright for Python; /usr/bin/chromium, or $CHROMIUM), and saves each page twice.
Nothing here reaches the network but 127.0.0.1. `make screenshots` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from playwright.async_api import Browser, async_playwright

from bytespike import catalog
from bytespike.accounts import service as accounts
from bytespike.app import create_app
from bytespike.billing import service as billing
from bytespike.console import credentials
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.db.engine import Database
from bytespike.keys import service as keys
from bytespike.money import parse_usd
from bytespike.notifications import service as notifications
from bytespike.orgs import service as orgs
from bytespike.settings import Settings
from bytespike.webhooks import events
from bytespike.webhooks import service as webhooks

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WIDTHS = (360, 1280)
PASSWORD = "correct horse battery staple"  # noqa: S105 -- a throw-away database's
MODELS = ("claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro", "mock")
CATALOG = "".join(
    f'[[models]]\nid = "{m}"\nprovider = "mock"\nupstream_model = "mock"\n'
    f'input_usd_per_mtok = "{price}"\noutput_usd_per_mtok = "{out}"\n'
    "context_tokens = 200000\nmax_output_tokens = 4096\n\n"
    for m, price, out in zip(
        MODELS, ("3.00", "2.50", "2.00", "3.00"), ("15.00", "15.00", "12.00", "15.00"), strict=True
    )
)

# (file name, who, path): every page, seen by the person it is for.
PAGES = [
    ("login", None, "/console/login"),
    ("dashboard", "ada", "/console/"),
    ("keys", "ada", "/console/keys"),
    ("usage", "ada", "/console/usage"),
    ("notifications", "ada", "/console/account/notifications"),
    ("webhook", "ada", "/console/account/notifications/webhooks/1"),
    ("key", "ada", "/console/keys/1"),
    ("org", "ada", "/console/org"),
    ("org-member", "cy", "/console/org"),
    ("admin", "root", "/console/admin/"),
    ("admin-users", "root", "/console/admin/users"),
    ("admin-orgs", "root", "/console/admin/orgs"),
    ("admin-wallets", "root", "/console/admin/wallets"),
    ("admin-keys", "root", "/console/admin/keys"),
    ("admin-ledger", "root", "/console/admin/ledger?org=Dosia%20AI"),
    ("admin-audit", "root", "/console/admin/audit"),
    ("admin-models", "root", "/console/admin/models"),
]


@dataclass
class MovableClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment


async def seed(ctx: Context, clock: MovableClock, url: str) -> None:
    """A month of a small company: ada (owner of Dosia AI, individual), bob (enterprise
    admin), cy (enterprise member), and root, an operator."""
    for name, tier in (
        ("ada", "individual"),
        ("bob", "enterprise"),
        ("cy", "enterprise"),
        ("root", "individual"),
    ):
        await accounts.create_user(ctx, username=name, email=f"{name}@dosia.ai", tier=tier)
        await credentials.set_password(ctx, name, PASSWORD)
    await credentials.set_operator(ctx, "root", operator=True)
    await orgs.create(ctx, name="Dosia AI")
    for name, role in (("ada", "owner"), ("bob", "admin"), ("cy", "member")):
        await orgs.add_member(ctx, org="Dosia AI", username=name, role=role)
    await billing.top_up(ctx, amount=parse_usd("250"), username="ada", reference="invoice-0001")
    await billing.top_up(ctx, amount=parse_usd("1000"), org="Dosia AI", reference="invoice-0002")
    secrets = {
        "ada-laptop": (
            await keys.create(
                ctx,
                username="ada",
                name="laptop",
                models=[(m, None) for m in MODELS[:3]] + [("mock", parse_usd("5"))],
            )
        )["key"],
        "ada-ci": (
            await keys.create(ctx, username="ada", name="ci", models=[("gpt-5-4", parse_usd("50"))])
        )["key"],
        "bob": (await keys.create(ctx, username="bob", org="Dosia AI", name="bob-dev"))["key"],
        "cy": (await keys.create(ctx, username="cy", org="Dosia AI", name="cy-notebook"))["key"],
    }
    start = clock.moment
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for day in range(30):
            clock.moment = start + timedelta(days=day, hours=9)
            for i, (who, secret) in enumerate(secrets.items()):
                for n in range((day * 7 + i * 3) % 5):
                    model = MODELS[(day + n + i) % 3] if who != "ada-ci" else "gpt-5-4"
                    words = " ".join(["hello"] * (40 + 30 * ((day + n) % 9)))
                    answer = await client.post(
                        "/v1/chat/completions",
                        headers={"Authorization": f"Bearer {secret}"},
                        json={
                            "model": model,
                            "max_tokens": 2000,
                            "messages": [{"role": "user", "content": words}],
                        },
                    )
                    answer.raise_for_status()
    clock.moment = start + timedelta(days=29, hours=17)
    record = await keys.record(ctx, 1)
    await notifications.set_threshold(ctx, record, parse_usd("20"))
    hook = await webhooks.create(
        ctx,
        record,
        url="http://127.0.0.1:9/bytespike",
        event_types=list(events.SUBSCRIBABLE[:3]),
        description="pager",
    )
    await webhooks.send_test(ctx, record, hook["id"])


async def shoot(browser: Browser, url: str, out: Path, only: set[str]) -> list[Path]:
    saved = []
    for width in WIDTHS:
        contexts = {}
        for name, who, path in PAGES:
            if only and name not in only:
                continue
            if who not in contexts:
                contexts[who] = await browser.new_context(viewport={"width": width, "height": 900})
                if who is not None:
                    page = await contexts[who].new_page()
                    await page.goto(f"{url}/console/login")
                    await page.fill("#username", who)
                    await page.fill("#password", PASSWORD)
                    await page.click("button[type=submit]")
                    await page.wait_for_url(f"{url}/console/")
                    await page.close()
            page = await contexts[who].new_page()
            errors: list[str] = []
            page.on(
                "console", lambda m, seen=errors: seen.append(m.text) if m.type == "error" else None
            )
            await page.goto(url + path)
            await page.wait_for_load_state("networkidle")
            target = out / f"{name}-{width}.png"
            await page.screenshot(path=str(target), full_page=True)
            saved.append(target)
            if errors:
                print(f"console errors on {name} at {width}px: {errors}", file=sys.stderr)
            await page.close()
        for context in contexts.values():
            await context.close()
    return saved


async def run(settings: Settings, out: Path, only: set[str]) -> list[Path]:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = MovableClock(start - timedelta(days=29))
    ctx = Context(
        settings=settings,
        db=Database(settings.database_url),
        catalog=catalog.load(settings.catalog),
        clock=clock,
    )
    app = create_app(settings, ctx=ctx, background=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # it failed to start: say why
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        await seed(ctx, clock, url)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            saved = await shoot(browser, url, out, only)
            await browser.close()
    finally:
        server.should_exit = True
        await task
    return saved


def main(out: Path, only: set[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "catalog.toml").write_text(CATALOG)
        settings = Settings(
            database_url=f"sqlite:///{tmp}/console.db",
            catalog=Path(tmp) / "catalog.toml",
            secret_key="screenshots",  # noqa: S106 -- a throw-away database's
            public_url="http://127.0.0.1",
            redis_url=None,
            webhook_allow_private=True,
        )
        migrate.upgrade(settings.database_url)  # before the loop: Alembic runs its own
        saved = asyncio.run(run(settings, out, only))
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    parser.add_argument("--only", nargs="*", default=[], help="page names, e.g. dashboard keys")
    args = parser.parse_args()
    main(args.out, set(args.only))
