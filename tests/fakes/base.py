"""Local fake upstreams: real HTTP servers speaking a provider's wire format, told by a
`Script` what to answer, recording what they received.

Each provider module (tests/fakes/openai.py, anthropic.py, gemini.py) defines
`routes(fake: FakeUpstream) -> list[aiohttp.web.RouteDef]`; `serve(routes)` runs them on a
free loopback port. `fake.url` is the base URL in that provider SDK's convention:
`http://127.0.0.1:PORT/v1` for OpenAI, the bare `http://127.0.0.1:PORT` for Anthropic and
Gemini.

Like the real providers, a fake answers a request it cannot read (not a JSON object, or a
field it reads of the wrong type) with a 400 in its provider's error format, never a 500:
the gateway turns an upstream 5xx into its own 502, which would blame the gateway for input.
A provider module raises `Unreadable` and hands `serve` the function that renders it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


class Unreadable(Exception):
    """The request is not one the provider can read: a 400 in its own error format."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param  # the field at fault, for formats that name it


@dataclass
class Script:
    """What the fake does with the requests it gets (change it between calls)."""

    text: str = "Hello from the fake upstream."
    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    # Answer with a call to this tool (name, arguments) instead of text.
    tool_call: tuple[str, dict[str, Any]] | None = None
    # Non-2xx: answer with the provider's documented error body and this status.
    status: int = 200
    error_message: str = "upstream says no"
    # Seconds to wait before the response headers (timeouts).
    delay: float = 0.0
    # 200 with a body that is not the provider's format.
    malformed: bool = False
    # Streaming: after this many content chunks, stop sending and hang (client disconnects,
    # interrupted streams).
    stall_after_chunks: int | None = None
    # With stall_after_chunks (OpenAI's fake): once this is set, send the rest of the
    # stream instead of hanging on (a slow upstream, a stream in flight at a stop).
    resume: asyncio.Event | None = None
    # Streaming: leave out the final usage (a stream cut off by the upstream).
    omit_usage: bool = False
    # A recorded usage object in the provider's own shape, reported as is instead of the
    # counts above (Gemini's usageMetadata; the Responses API's usage for /v1/responses).
    usage: dict[str, Any] | None = None
    # Server-side web searches the answer reports outside usage: the Responses API's
    # web_search_call items, Gemini's groundingMetadata.webSearchQueries.
    searches: int = 0
    # How many pieces a streamed text is split into.
    chunks: int = 3


@dataclass
class FakeUpstream:
    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)  # JSON bodies received
    headers: list[dict[str, str]] = field(default_factory=list)  # their headers
    paths: list[str] = field(default_factory=list)  # their paths (with query)
    url: str = ""
    # Set when a streaming response was abandoned by its client (cancellation reached it).
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    # Scripts for the next requests, one each, in order (a tool call, then the answer to
    # its result); once they are used up, `script` stays the last one.
    queue: list[Script] = field(default_factory=list)

    async def record(self, request: web.Request) -> dict[str, Any]:
        """The request's JSON object, recorded; `Unreadable` if it is not one."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Unreadable(f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise Unreadable("the request body must be a JSON object")
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.queue:
            self.script = self.queue.pop(0)
        self.paths.append(request.path_qs)
        if self.script.delay:
            await asyncio.sleep(self.script.delay)
        return body

    def split(self, text: str | None = None) -> list[str]:
        """The script's text in `chunks` pieces that join back to it exactly."""
        text = self.script.text if text is None else text
        n = max(1, min(self.script.chunks, len(text) or 1))
        size = -(-len(text) // n) if text else 0
        return [text[i : i + size] for i in range(0, len(text), size)] if text else [""]


Refusal = Callable[[Unreadable], web.Response]


def plain_refusal(problem: Unreadable) -> web.Response:
    """The `{"error": {"message", "type"}}` most providers share, for fakes with no format."""
    error = {"message": problem.message, "type": "invalid_request_error"}
    return web.json_response({"error": error}, status=400)


def refusing(refuse: Refusal) -> Middleware:
    """Middleware answering `Unreadable` with the provider's 400."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Unreadable as problem:
            return refuse(problem)

    return middleware


@asynccontextmanager
async def serve(
    routes: Callable[[FakeUpstream], list[web.RouteDef]],
    *,
    sdk_path: str = "",
    refuse: Refusal = plain_refusal,
) -> AsyncIterator[FakeUpstream]:
    """Run a fake on a free loopback port; `sdk_path` is appended to its URL ("/v1");
    `refuse` renders a request it cannot read."""
    fake = FakeUpstream()
    app = web.Application(middlewares=[refusing(refuse)])
    app.add_routes(routes(fake))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}{sdk_path}"
    try:
        yield fake
    finally:
        await runner.cleanup()
