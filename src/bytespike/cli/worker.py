"""bytespike worker: the webhook dispatcher on its own, for deployments that separate it.

SIGTERM (or Ctrl+C) stops it gracefully: it claims nothing new once idle, delivers what is
due for up to the grace period (`--grace`, BYTESPIKE_GRACE_SECONDS), records each outcome,
and exits 0. A delivery still under way then is cut; its lease brings it back later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import typer

from bytespike.cli.runner import start_process
from bytespike.settings import Settings

log = logging.getLogger(__name__)


def worker(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
    grace: int | None = typer.Option(
        None,
        min=0,
        help="Seconds deliveries may run on after SIGTERM (default BYTESPIKE_GRACE_SECONDS, 30).",
    ),
) -> None:
    """Deliver webhooks from the outbox (the server runs a dispatcher too; both may run)."""
    if grace is not None:
        os.environ["BYTESPIKE_GRACE_SECONDS"] = str(grace)
    asyncio.run(_work(start_process(), once))


async def _work(settings: Settings, once: bool) -> None:
    from bytespike.context import Context
    from bytespike.webhooks.dispatcher import Dispatcher
    from bytespike.webhooks.transport import HttpTransport

    ctx = Context.build(settings)
    transport = HttpTransport.from_settings(settings)
    dispatcher = Dispatcher(ctx, transport)
    try:
        if once:
            while await dispatcher.run_once():
                pass
        else:
            dispatcher.start(settings.webhook_poll_seconds)
            await _signalled()
            log.info("stopping: delivering what is due", extra={"grace": settings.grace_seconds})
            await dispatcher.stop(within=settings.grace_seconds)
    finally:
        await transport.close()
        await ctx.db.close()


async def _signalled() -> None:
    """Wait for SIGTERM or SIGINT; from then on a second one is the same request."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
