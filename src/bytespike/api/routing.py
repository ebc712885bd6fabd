"""Route: a Starlette route that names itself in the request's scope (`scope["route"]`).

Starlette's router does so for every route; FastAPI's, which serves bytespike, only for its
own APIRoutes. The model APIs are plain routes (proxy/routes.py), and their metrics and
spans are labelled with the route's template (`/v1beta/models/{call:gemini_call}`), never
with the raw path, whose model names and ids would make a label per request.

Also the `anypath` convertor their ids use (registered here, before any route is made).
"""

from __future__ import annotations

from starlette import routing
from starlette.convertors import Convertor, register_url_convertor
from starlette.types import Scope


class Route(routing.Route):
    def matches(self, scope: Scope) -> tuple[routing.Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not routing.Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class _AnyPath(Convertor[str]):
    """Starlette's `path` stops at a newline; a model id with one must still reach the
    model route (and get its API's 404), not fall through to the API's generic one."""

    regex = "[\\s\\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())
