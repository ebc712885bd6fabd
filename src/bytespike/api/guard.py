"""The /api routes' door: credentials first, then the body, bounded.

FastAPI reads a route's body before it solves the route's dependencies, so an auth
dependency alone would let an anonymous client make the server read (and hold) whatever it
sends. This middleware checks what each area of the API requires before a byte of the body
is read, then reads the body within the limits of api/bodies.py and hands it on. The model
routes (/v1/...) do the same themselves, in proxy/pipeline.py, in their own envelopes.

A NUL character anywhere in the path, query or body is refused here (400): PostgreSQL's
text cannot hold one, so a name or reference with one would otherwise be a 500 there (and
stored on SQLite); refused alike on both.

Failure policy: a refusal here is answered here, in the API's envelope; nothing behind it
runs.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytespike.api import auth, bodies
from bytespike.api.responses import JSON
from bytespike.context import Context
from bytespike.errors import BytespikeError, InvalidRequest

ADMIN_AREA = "/api/v1/admin/"
KEY_AREA = "/api/v1/me/"
# A JSON `\u0000` escape whose backslash is not itself escaped (an even run before it).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class Guard:
    """ASGI middleware for every path under /api/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/") or not _routed(scope):
            # Not ours, or no route takes it: the router answers 404 or 405 unread.
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            body = await self._admit(request)
        except BytespikeError as exc:
            rate = scope.get("state", {}).get("rate_headers") or {}
            refusal = JSON(exc.envelope(), status_code=exc.status, headers={**rate, **exc.headers})
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _admit(self, request: Request) -> bytes:
        ctx: Context = request.app.state.ctx
        path = request.url.path
        if path.startswith(ADMIN_AREA):
            auth.require_admin_token(request, ctx.settings.admin_token)
        elif path.startswith(KEY_AREA):
            caller = await auth.gate(request, ctx, request.app.state.limiter)
            request.scope.setdefault("state", {})["caller"] = caller
        settings = ctx.settings
        body = await bodies.read_all(
            request.receive,
            request.headers,
            limit=settings.api_body_limit_bytes,
            within=settings.body_timeout_seconds,
        )
        _refuse_nul(request, body)
        return body


def _refuse_nul(request: Request, body: bytes) -> None:
    query = request.query_params.multi_items()
    if (
        "\x00" in request.url.path
        or any("\x00" in name + value for name, value in query)
        or b"\x00" in body
        or _NUL_ESCAPE.search(body)
    ):
        raise InvalidRequest("text cannot contain the NUL character (\\u0000)")


def _routed(scope: Scope) -> bool:
    return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own messages (a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
