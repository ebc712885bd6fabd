"""proxy/hot.py: what a metered POST gets on the hot path that FastAPI's stack would have
given it — its request id, a 500 for anything that escapes its route — and what it leaves
to that stack."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from bytespike.api.routing import Route
from bytespike.proxy.hot import HotPath


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


async def fine(request: Request) -> Response:
    return PlainTextResponse(f"{request.scope['route'].path} {request.app.state.marker}")


def client() -> httpx.AsyncClient:
    routes = [
        Route("/v1/broken", broken, methods=["POST"]),
        Route("/v1/fine", fine, methods=["POST"]),
        Route("/v1/fine/{x}", fine, methods=["POST"]),
    ]
    stack = Starlette(routes=routes)
    stack.state.marker = "the app's state"
    hot = HotPath(stack, routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        route = hot.route(scope)
        if route is None:
            await stack(scope, receive, send)
        else:
            await hot.serve(route, scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hot.test")


async def test_a_route_on_the_hot_path_sees_its_route_and_app_and_is_named() -> None:
    async with client() as c:
        answer = await c.post("/v1/fine", headers={"x-request-id": "mine-1"})
    assert answer.status_code == 200
    assert answer.text == "/v1/fine the app's state"
    assert answer.headers["x-request-id"] == "mine-1"


async def test_an_exception_escaping_a_route_is_a_500_with_its_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with client() as c:
        answer = await c.post("/v1/broken")
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "api_error"
    assert answer.headers["x-request-id"].startswith("req_")
    assert "request failed" in caplog.text


async def test_other_methods_and_templated_paths_take_the_full_stack() -> None:
    async with client() as c:
        wrong_method = await c.get("/v1/fine")
        templated = await c.post("/v1/fine/7")
    assert wrong_method.status_code == 405  # the router's answer, not the hot path's
    assert "x-request-id" not in wrong_method.headers
    assert templated.status_code == 200 and "x-request-id" not in templated.headers
