"""The console as an ASGI app of its own, mounted at /console by bytespike/app.py: its own
routes, static files, security headers and HTML error pages, beside the API's JSON ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bytespike.console.access import page
from bytespike.console.views import admin, auth, dashboard, keys, notifications, org, usage
from bytespike.console.web import SecurityHeaders, render
from bytespike.context import Context

STATIC = Path(__file__).parent / "static"
BOTH = ["GET", "POST"]


def routes() -> list[BaseRoute]:
    return [
        Route("/", page(dashboard.show)),
        Route("/keys", page(keys.index, keys.create), methods=BOTH),
        Route("/keys/{key_id}", page(keys.detail, keys.change), methods=BOTH),
        Route(
            "/account/notifications",
            page(notifications.show, notifications.change),
            methods=BOTH,
        ),
        Route(
            "/account/notifications/webhooks/{endpoint_id}",
            page(notifications.endpoint, notifications.endpoint_change),
            methods=BOTH,
        ),
        Route("/usage", page(usage.show)),
        Route("/usage.csv", page(usage.csv)),
        Route("/org", page(org.show, org.change), methods=BOTH),
        *admin_routes(),
        Route("/login", auth.login, methods=BOTH),
        Route("/logout", auth.logout, methods=BOTH),
        Route("/invite", auth.invite, methods=BOTH),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def admin_routes() -> list[BaseRoute]:
    def operators(get: Any, post: Any = None) -> Any:
        return page(get, post, operator=True)

    return [
        Route("/admin/", operators(admin.overview)),
        Route("/admin/health", operators(admin.health)),
        Route("/admin/users", operators(admin.users, admin.users_change), methods=BOTH),
        Route("/admin/orgs", operators(admin.orgs_page, admin.orgs_change), methods=BOTH),
        Route("/admin/wallets", operators(admin.wallets, admin.wallets_change), methods=BOTH),
        Route("/admin/keys", operators(admin.keys_page, admin.keys_change), methods=BOTH),
        Route("/admin/ledger", operators(admin.ledger, admin.ledger_verify), methods=BOTH),
        Route("/admin/audit", operators(admin.audit_log)),
        Route("/admin/models", operators(admin.models)),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = "no such page" if status == 404 else str(getattr(exc, "detail", "error"))
    return render(request, "error.html", status=status, message=message)


def build(ctx: Context) -> Starlette:
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: _not_found},
    )
    app.state.ctx = ctx
    return app
