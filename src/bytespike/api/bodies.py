"""Reading a request body, bounded: its size is checked on `Content-Length` before a byte
is read and again as the bytes arrive (a body may come chunked, or lie about its length),
and the whole body must arrive within a time limit, so no client can make the gateway hold
more than the limit in memory, or a connection forever.

Callers authenticate first (api/guard.py for the /api routes, proxy/pipeline.py for the
model routes): an anonymous client never gets as far as sending a body that is read.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Receive

from bytespike.errors import InvalidRequest, PayloadTooLarge, RequestTimeout
from bytespike.upstream.base import JSONObject


async def read(request: Request, *, limit: int, within: float) -> bytes:
    return await read_all(request.receive, request.headers, limit=limit, within=within)


async def read_all(receive: Receive, headers: Headers, *, limit: int, within: float) -> bytes:
    """The whole body, or 413 past `limit` bytes, 408 past `within` seconds."""
    declared = headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise InvalidRequest("the Content-Length header is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise InvalidRequest("the client closed the connection before its body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {within:g} s") from None
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit} bytes")


def json_object(raw: bytes) -> JSONObject:
    """The body as a JSON object, or 400 saying what it is instead."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body
