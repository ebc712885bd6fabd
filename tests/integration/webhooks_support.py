"""A real HTTP receiver on loopback for webhook tests, verifying every delivery with the
`standardwebhooks` library, plus settings that allow loopback endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook

from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.settings import Settings
from bytespike.webhooks import service as webhooks
from bytespike.webhooks.dispatcher import Dispatcher
from bytespike.webhooks.transport import HttpTransport
from tests.conftest import ADMIN_TOKEN
from tests.factories import make_key, make_user, top_up, wallet_of


def loopback_settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        admin_token=ADMIN_TOKEN,
        redis_url=None,
        webhook_allow_private=True,
        webhook_timeout_seconds=2,
        secret_key="test-secret-key",
    )


@dataclass
class Delivery:
    webhook_id: str
    body: dict[str, Any]
    verified: bool


@dataclass
class Receiver:
    """Answers `statuses` in turn (then 200); with `stall` set, requests wait for `unblock`."""

    url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)  # path -> whsec_ secret
    statuses: list[int] = field(default_factory=list)
    stall: bool = False
    delay: float = 0.0
    body: bytes = b"ok"
    received: list[Delivery] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    unblock: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        secret = self.secrets.get(request.path)
        verified = False
        parsed: dict[str, Any] = {}
        if secret is not None:
            # Raises on a bad signature or a stale timestamp; recorded as unverified.
            try:
                parsed = Webhook(secret).verify(raw, dict(request.headers))
                verified = True
            except Exception:
                verified = False
        self.received.append(Delivery(request.headers["webhook-id"], parsed, verified))
        self.arrived.set()
        if self.stall:
            await self.unblock.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, body=self.body)

    def ids(self) -> list[str]:
        return [d.webhook_id for d in self.received]


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@asynccontextmanager
async def dispatching(ctx: Context, **options: Any) -> AsyncIterator[Dispatcher]:
    transport = HttpTransport(timeout=ctx.settings.webhook_timeout_seconds, allow_private=True)
    try:
        yield Dispatcher(ctx, transport, **options)
    finally:
        await transport.close()


async def drain(dispatcher: Dispatcher) -> int:
    """Run until nothing is due; returns how many attempts were made."""
    total = 0
    while done := await dispatcher.run_once():
        total += done
    return total


async def wait_for(receiver: Receiver, count: int, seconds: float = 20) -> None:
    """Until `count` deliveries arrived (from another process, so polling is the way)."""
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, f"only {len(receiver.received)} deliveries arrived"
        await asyncio.sleep(0.1)


async def subscribed(
    ctx: Context, username: str, usd: str, event: str, **key_options: Any
) -> tuple[int, int]:
    """`username` with `usd` in their wallet, a key, and an endpoint subscribed to `event`
    (so such events are stored); (key id, wallet id)."""
    await make_user(ctx, username)
    await top_up(ctx, usd, user=username)
    minted = await make_key(ctx, username, **key_options)
    ctx.settings.webhook_allow_private = True
    await webhooks.create(
        ctx,
        await keys.resolve(ctx, minted["key"]),
        url="http://127.0.0.1:9/hook",
        event_types=[event],
        description=None,
    )
    return minted["id"], await wallet_of(ctx, user=username)
