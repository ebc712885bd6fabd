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

import aiohttp
import orjson

from bytespike.upstream.base import (
    Endpoint,
    JSONObject,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamUnavailable,
)

ErrorReader = Callable[[int, bytes], UpstreamFailure]


def timeout(endpoint: Endpoint) -> aiohttp.ClientTimeout:
    """No total limit (long answers are fine), only on connecting and on each silence."""
    return aiohttp.ClientTimeout(
        total=None, sock_connect=endpoint.connect_timeout, sock_read=endpoint.read_timeout
    )


@asynccontextmanager
async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: JSONObject,
    *,
    headers: dict[str, str],
    limits: aiohttp.ClientTimeout,
    error: ErrorReader,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST `body` as JSON and yield the response if it is a 2xx."""
    try:
        async with session.post(
            url,
            data=orjson.dumps(body),
            headers={"Content-Type": "application/json", **headers},
            timeout=limits,
        ) as response:
            if not 200 <= response.status < 300:
                raise error(response.status, await response.read())
            yield response
    # aiohttp's ServerTimeoutError is also a ClientError: timeouts must be caught first.
    except TimeoutError as exc:
        raise UpstreamTimeout("the upstream did not answer in time") from exc
    except aiohttp.ClientError as exc:
        # The message may reach API clients, so it names no address; the cause is chained.
        raise UpstreamUnavailable(f"the upstream connection failed ({type(exc).__name__})") from exc
