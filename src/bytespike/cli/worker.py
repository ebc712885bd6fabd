"""bytespike worker: the webhook dispatcher on its own, for deployments that separate it."""

from __future__ import annotations

import asyncio

import typer

from bytespike.cli.runner import start_process
from bytespike.settings import Settings


def worker(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
) -> None:
    """Deliver webhooks from the outbox (the server runs a dispatcher too; both may run)."""
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
            await dispatcher.run(settings.webhook_poll_seconds)
    finally:
        await transport.close()
        await ctx.db.close()
