"""The model APIs' hot path: a metered POST goes from the server straight to its route.

FastAPI's stack wraps every request in about ten layers (its error, telemetry and exception
middleware, an exit stack, the router's scan of every route, and bytespike's request-id,
access-log and /api guard middleware), each an await and most a wrapper around `send`.
The model routes need none of them: each answers every failure itself, in its client's
envelope (proxy/pipeline.py). So for the exact paths of proxy/routes.py's POST routes this
does just what those layers do for them, once: names the request (request_ids.py), writes
its access line (logs.py), labels its metrics with its route, and answers a 500 if
something still escapes before the answer has started. Everything else, and every request
when tracing is on (its span wraps the whole stack), takes FastAPI's way.

Failure policy: an exception escaping a route before its answer started is logged and
answered 500; after it started, it is logged and re-raised, and the server cuts the
connection (as Starlette's error middleware does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytespike import logs, request_ids
from bytespike.api import errors

log = logging.getLogger(__name__)


class HotPath:
    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self._app = app  # what the routes find as `request.app` (its state: the gateway)
        self._routes = {
            route.path: route
            for route in routes
            if isinstance(route, Route)
            and "POST" in (route.methods or ())
            and not route.param_convertors
        }

    def route(self, scope: Scope) -> Route | None:
        """The route this request goes straight to, if any."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        return self._routes.get(scope["path"])

    async def serve(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        scope["app"] = self._app
        scope["route"] = route  # the metrics' label (api/routing.py)
        request_id, named = request_ids.name(scope)
        token = request_ids.serving(request_id)
        status = 0

        async def send_named(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *named]
            await send(message)

        try:
            response = await route.endpoint(Request(scope, receive, send))
            await response(scope, receive, send_named)
        except Exception:
            log.exception("request failed", extra={"path": scope["path"]})
            if status:
                raise
            failure = errors.envelope(500, "api_error", "internal error; it has been logged")
            await failure(scope, receive, send_named)
        finally:
            if logs.access_log.isEnabledFor(logging.INFO):
                logs.log_access(scope, status or 500, started)
            request_ids.done(token)
