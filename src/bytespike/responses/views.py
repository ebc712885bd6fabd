"""GET and DELETE /v1/responses/{id}: a stored response, for any key of its owner."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api import auth
from bytespike.api.responses import JSON
from bytespike.proxy.pipeline import Gateway
from bytespike.responses import service


async def retrieve(gw: Gateway, request: Request, response_id: str) -> Response:
    caller = await auth.gate(request, gw.ctx, gw.limiter)
    body = await service.get(gw.ctx, caller.key.user_id, response_id)
    return JSON(body, headers=caller.rate_headers)


async def delete(gw: Gateway, request: Request, response_id: str) -> Response:
    caller = await auth.gate(request, gw.ctx, gw.limiter)
    await service.delete(gw.ctx, caller.key.user_id, response_id)
    deleted = {"id": response_id, "object": "response", "deleted": True}
    return JSON(deleted, headers=caller.rate_headers)
