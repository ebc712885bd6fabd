"""Request ids: one per HTTP request, on its response, its log lines, its usage record and
its audit entries, so a client's complaint finds everything the request did.

A client's own `x-request-id` is kept when it looks like one (letters, digits and
`._:-`, at most 64 characters); anything else is replaced, never echoed, since a header
value goes into logs and the database. Every response carries it as `x-request-id`; those
of Anthropic's routes (`/v1/messages` and below: api/paths.py), or of any request with an
`anthropic-version` header, also as `request-id`, where the anthropic SDKs read it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar, Token

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytespike import uniques
from bytespike.api import paths

HEADER = "x-request-id"
_HEADER = HEADER.encode()
_SAFE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_current: ContextVar[str | None] = ContextVar("bytespike_request_id", default=None)


def new() -> str:
    return f"req_{uniques.bits(128):032x}"  # 32 hex digits, as a uuid4's would be


def accepted(given: str | None) -> str:
    """The client's id if it looks safe, else a new one."""
    return given if given is not None and _SAFE.fullmatch(given) else new()


def current() -> str | None:
    """The id of the request being served (None outside one: the CLI, background loops)."""
    return _current.get()


def name(scope: Scope) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The request's id, put in its scope's state, and the headers that carry it out."""
    # The raw headers, whose names ASGI servers give in lower case, as a dict made in C (the
    # first of a repeated name wins): this runs for every metered call (proxy/hot.py), where
    # a Headers view would decode them all, and a loop in Python costs more than the dict.
    headers = dict(reversed(scope["headers"]))
    raw_id = headers.get(_HEADER)
    given = None if raw_id is None else raw_id.decode("latin-1")
    anthropic = b"anthropic-version" in headers or paths.client_api(scope["path"]) == "anthropic"
    request_id = accepted(given)
    scope.setdefault("state", {})["request_id"] = request_id
    encoded = request_id.encode()
    raw = [(_HEADER, encoded)]
    if anthropic:
        raw.append((b"request-id", encoded))
    return request_id, raw


class RequestIds:
    """ASGI middleware, outermost: names the request before anything else runs (the access
    log line included) and puts the name on whatever answer leaves. (The model APIs' hot
    path, proxy/hot.py, does the same itself.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, raw = name(scope)

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *raw]
            await send(message)

        token = _current.set(request_id)
        try:
            await self.app(scope, receive, named)
        finally:
            _current.reset(token)


def serving(request_id: str) -> Token[str | None]:
    """Make `request_id` the current one (`current()`) until `done(token)`."""
    return _current.set(request_id)


def done(token: Token[str | None]) -> None:
    _current.reset(token)
