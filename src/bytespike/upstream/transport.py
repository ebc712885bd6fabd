"""One HTTP exchange with an upstream, and how its transport failures are named.

Every provider posts JSON through `post()`, which hands back the 2xx response to read and
turns what can go wrong into the contract's exceptions (upstream/base.py).

Failure policy: nothing is retried here (a retried completion may be billed twice by the
upstream). A silence longer than the endpoint's read timeout is `UpstreamTimeout`; a refused
or dropped connection, or a body cut short, is `UpstreamUnavailable`; a non-2xx answer is
whatever the provider's `error` function makes of its body. Exceptions raised while the
caller reads the body inside the `async with` are mapped the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import orjson

from bytespike.upstream.base import (
    Endpoint,
    JSONObject,
    UpstreamError,
    UpstreamFailure,
    UpstreamMalformed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from bytespike.upstream.client import Client, ConnectionFailed, Limits, Response

ErrorReader = Callable[[int, bytes], UpstreamFailure]
JSON = {"Content-Type": "application/json"}


def timeout(endpoint: Endpoint) -> Limits:
    """No total limit (long answers are fine), only on connecting and on each silence."""
    return Limits(connect=endpoint.connect_timeout, read=endpoint.read_timeout)


@asynccontextmanager
async def post(
    client: Client,
    url: str,
    body: JSONObject,
    *,
    headers: dict[str, str],
    limits: Limits,
    error: ErrorReader,
) -> AsyncIterator[Response]:
    """POST `body` as JSON and yield the response if it is a 2xx."""
    try:
        async with client.post(url, orjson.dumps(body), {**JSON, **headers}, limits) as response:
            if not 200 <= response.status < 300:
                raise error(response.status, await response.read())
            yield response
    except TimeoutError as exc:
        raise UpstreamTimeout("the upstream did not answer in time") from exc
    except ConnectionFailed as exc:
        # The message may reach API clients, so it names no address; the cause is chained.
        raise UpstreamUnavailable(f"the upstream connection failed: {exc}") from exc


def json_object(raw: bytes | str, what: str) -> JSONObject:
    """`raw` as a JSON object; `UpstreamMalformed` saying `what` was not one otherwise."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamMalformed(f"{what} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise UpstreamMalformed(f"{what} is not a JSON object")
    return parsed


def error_body(status: int, raw: bytes, *, who: str = "upstream") -> UpstreamError:
    """An error answer in OpenAI's and Anthropic's shape, `{"error": {"message", "type"}}`
    (some compatible servers send `{"error": "text"}`), or its raw text if not that."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    detail = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(detail, dict):
        message = str(detail.get("message") or f"{who} answered {status}")
        kind = detail.get("type")
        return UpstreamError(status, message, error_type=kind if isinstance(kind, str) else None)
    if isinstance(detail, str):
        return UpstreamError(status, detail)
    return UpstreamError(status, body_text(raw) or f"{who} answered {status}")


def body_text(raw: bytes) -> str:
    """The start of a body that is not the expected JSON, for an error message."""
    return raw.decode("utf-8", errors="replace").strip()[:500]
