"""create_app(settings): the one composition root of the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.types import Receive, Scope, Send

from bytespike import __version__, logs, request_ids, traces
from bytespike.accounts.routes import router as account_router
from bytespike.admin.routes import router as admin_router
from bytespike.api import docs, errors, guard
from bytespike.api.responses import JSON
from bytespike.billing import sweeper
from bytespike.console import app as console
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.db.batch import GroupCommit
from bytespike.idempotency import sweeper as idempotency_sweeper
from bytespike.keys.cache import KeyCache
from bytespike.keys.routes import router as key_router
from bytespike.metrics import exposition
from bytespike.metrics.families import Metrics
from bytespike.notifications.routes import router as notifications_router
from bytespike.proxy import openapi as proxy_openapi
from bytespike.proxy.hot import HotPath
from bytespike.proxy.pipeline import Gateway
from bytespike.proxy.routes import routes as proxy_routes
from bytespike.ratelimit.base import RateLimiter
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.responses import sweeper as responses_sweeper
from bytespike.settings import Settings
from bytespike.upstream.registry import Providers
from bytespike.usage.routes import router as usage_router
from bytespike.webhooks import signing
from bytespike.webhooks.dispatcher import Dispatcher
from bytespike.webhooks.routes import router as webhooks_router
from bytespike.webhooks.transport import HttpTransport

log = logging.getLogger(__name__)
# At a stop, what calls cut at the end of the grace period get to settle in.
SETTLE_SECONDS = 10


class App(FastAPI):
    """FastAPI, with the model APIs' hot path in front of its middleware (proxy/hot.py)."""

    hot: HotPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot
        if hot is not None and (route := hot.route(scope)) is not None:
            await hot.serve(route, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def build_limiter(settings: Settings) -> RateLimiter:
    if settings.redis_url:
        # Imported only when used: the redis client costs ~6 MB of every process.
        from bytespike.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(settings.redis_url, prefix=f"{settings.redis_prefix}:rl")
    if settings.rate_limit_file is not None:  # the workers of one `serve --workers N`
        from bytespike.ratelimit.shared import SharedRateLimiter  # POSIX only (fcntl)

        return SharedRateLimiter(settings.rate_limit_file)
    return MemoryRateLimiter()


def create_app(
    settings: Settings,
    *,
    ctx: Context | None = None,
    limiter: RateLimiter | None = None,
    background: bool = True,
    providers: Providers | None = None,
) -> App:
    ctx = ctx or Context.build(settings)
    limiter = limiter or build_limiter(settings)
    providers = providers or Providers(ctx.catalog, settings, clock=ctx.clock)
    tracing = traces.build(settings)  # None unless an OTLP endpoint is configured
    metrics = Metrics.build(tracing)
    # Each worker's breakers set its gauge as they change: a scrape reads any one worker.
    providers.health.listen(metrics.deployment_state)
    gateway = Gateway(
        ctx=ctx,
        limiter=limiter,
        keys=KeyCache(ctx),
        providers=providers,
        writes=GroupCommit(ctx.db, batches=metrics.batched),
        metrics=metrics,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate.require_current(ctx.db)  # refuse a database not at head
        signing.SecretBox.from_settings(settings)  # fail at start-up on a missing key
        transport = HttpTransport.from_settings(settings) if background else None
        dispatcher = Dispatcher(ctx, transport, metrics=metrics) if transport else None
        sweeping = None
        if dispatcher is not None:
            # Expired holds, idempotency keys and stored responses: one task, cancelled as one.
            sweeping = asyncio.gather(
                sweeper.run(ctx, settings.hold_sweep_seconds),
                idempotency_sweeper.run(ctx),
                responses_sweeper.run(ctx),
            )
            dispatcher.start(settings.webhook_poll_seconds)
        # What start-up made (modules, the app, its schemas: ~150,000 objects) lives as long
        # as the process: out of the collector's sight, a full collection no longer walks
        # it, which paused every call in flight for ~85 ms about once a second under load.
        gc.freeze()
        try:
            yield
        finally:
            # The graceful stop: uvicorn has stopped accepting and given the calls in flight
            # the grace period, cutting what was left. Each settles, the writes commit, the
            # outbox drains, and only then do the connections close.
            if left := await gateway.calls.settled(SETTLE_SECONDS):
                log.warning("calls not settled at stop; their holds expire", extra={"count": left})
            await gateway.writes.close()
            if sweeping is not None:
                sweeping.cancel()
                await asyncio.gather(sweeping, return_exceptions=True)
            if dispatcher is not None:
                await dispatcher.stop(within=settings.grace_seconds)
                await dispatcher.transport.close()
            await providers.close()
            await limiter.close()
            await ctx.db.close()
            metrics.close()
            if tracing is not None:
                await tracing.close()  # exports the spans still queued

    app = App(
        title="bytespike",
        version=__version__,
        description="Self-hosted LLM gateway with prepaid accounts.",
        lifespan=lifespan,
        default_response_class=JSON,
        docs_url=None,  # served by api/docs.py from vendored assets, not a CDN
        redoc_url=None,
        # FastAPI's built-in OpenTelemetry hooks check the global providers on every
        # request; bytespike logs its own access lines and makes its own spans (traces/).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    app.state.limiter = limiter
    app.state.gateway = gateway
    app.state.metrics = metrics
    errors.install(app)
    docs.install(app)
    app.include_router(account_router)
    app.include_router(key_router)
    app.include_router(admin_router)
    app.include_router(notifications_router)
    app.include_router(webhooks_router)
    app.include_router(usage_router)
    # First in the table: the model APIs are the hot path, matched before everything else.
    app.router.routes[0:0] = proxy_routes
    app.mount("/console", console.build(ctx))

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=302)

    app.add_route("/metrics", exposition.endpoint, methods=["GET"], include_in_schema=False)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSON:
        """200 when the database answers; 503 otherwise, so a load balancer stops routing here."""
        try:
            async with ctx.db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            return errors.envelope(503, "api_error", f"database unavailable: {type(exc).__name__}")
        return JSON({"status": "ok", "version": __version__})

    documented = app.openapi

    def openapi() -> dict[str, Any]:
        schema = documented()  # built once, then cached by FastAPI
        if "/v1/messages" not in schema["paths"]:
            proxy_openapi.describe(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(guard.Guard)
    app.add_middleware(logs.AccessLog)
    if tracing is not None:
        tracing.install(app)  # a span per request, around its access line
    app.add_middleware(request_ids.RequestIds)  # outermost: the access line has the id too
    if tracing is None:  # with tracing, every request's span wraps the whole stack
        app.hot = HotPath(app, proxy_routes)
    return app
