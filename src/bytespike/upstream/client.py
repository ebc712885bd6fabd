"""The HTTP/1.1 client every upstream call goes through: pooled keep-alive connections,
each answer parsed by httptools (the C parser uvicorn uses) and read whole or piece by
piece as it arrives.

Why not aiohttp's client (webhooks still use it): a metered call ran about 110 distinct
aiohttp functions for its one POST, a quarter of all the Python code a call touches, and
at concurrency 1 that cost is paid in cache misses on every call. This client does only
what an upstream call needs, and a call's gateway CPU fell accordingly (bench/percall.md).

Scope: POST with a body of known length; answers with Content-Length, chunked or ended by
the close of the connection; gzip and deflate bodies decoded; TLS with the system's CA
store; at most `limit` connections in use at once (further calls wait for one); a connect
timeout, and a read timeout on each silence of the upstream. No redirects, cookies, proxies
or retries: a retried completion may be billed twice.

Failure policy: whatever goes wrong on the wire raises `ConnectionFailed`, a silence past
the read timeout `TimeoutError`. A connection goes back to the pool only after an answer
read to its end that allows keep-alive, and is closed after anything else (an error, a
cancellation, a reader that stopped early), so the next call never reads a stale answer.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from bytespike import __version__

# Above this many unread bytes of an answer, stop reading the socket until the caller
# catches up (a slow client of a fast stream must not buffer the whole answer here).
HIGH_WATER = 1 << 20
KEEPALIVE_SECONDS = 15.0  # drop idle connections before most servers do (aiohttp's default)
USER_AGENT = f"bytespike/{__version__}"


class ConnectionFailed(Exception):
    """The connection could not be made, broke, or carried an answer that is not HTTP."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Seconds to wait for a connection, and for each next byte of an answer."""

    connect: float
    read: float


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port: the pool a connection belongs to
    head: bytes  # the request line and Host header


class Client:
    """Connections to any number of upstream hosts, at most `limit` in use at once."""

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._ssl: ssl.SSLContext | None = None
        self._open: set[_Connection] = set()

    @asynccontextmanager
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], limits: Limits
    ) -> AsyncIterator[_Connection]:
        """Send `body` and yield the connection once the answer's status and headers came;
        read the body with `read()` or `chunks()` inside the `async with`."""
        target = self._targets.get(url) or self._target(url)
        request = target.head + _header_lines(headers) + b"Content-Length: %d\r\n\r\n" % len(body)
        async with self._slots:
            connection = await self._connection(target, limits)
            try:
                await connection.send(request, body, limits.read)
                yield connection
            finally:
                self._release(target, connection)

    async def close(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()

    def _target(self, url: str) -> _Target:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ConnectionFailed(f"not an http(s) URL: {scheme}://…")
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        netloc = parts.netloc.rpartition("@")[2]  # never send userinfo in Host
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
        ).encode()
        target = _Target((scheme, host, port), head)
        if len(self._targets) < 1024:  # a catalog has a few URLs; never grow without bound
            self._targets[url] = target
        return target

    async def _connection(self, target: _Target, limits: Limits) -> _Connection:
        idle = self._idle.get(target.origin)
        if idle:
            deadline = asyncio.get_running_loop().time() - KEEPALIVE_SECONDS
            while idle:
                connection = idle.pop()  # the most recently used: least likely closed
                if not connection.lost and connection.idle_since > deadline:
                    return connection
                connection.close()
                self._open.discard(connection)
        scheme, host, port = target.origin
        context = self._context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(limits.connect):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop), host, port, ssl=context
                )
        except TimeoutError:  # an OSError too, but a timeout to the caller, not a failure
            raise
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectionFailed(f"could not connect ({type(exc).__name__})") from exc
        self._open.add(connection)
        return connection

    def _release(self, target: _Target, connection: _Connection) -> None:
        if connection.reusable():
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(target.origin, []).append(connection)
        else:
            connection.close()
            self._open.discard(connection)

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _header_lines(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        # A line break would let a value smuggle headers or a second request.
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ConnectionFailed(f"the {name} header holds a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()


class _Connection(asyncio.Protocol):
    """One connection, and the answer being read on it (one request at a time).

    httptools calls the `on_*` methods from `feed_data`; the reader waits on `_waiter`,
    which data, the end of the answer, an error or the silence timer sets."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.lost = False
        self.idle_since = 0.0
        self.status = 0
        self._started = False  # an answer is expected (a request was sent)
        self._headed = False  # its status and headers came
        self._done = False  # and its whole body
        self._keep_alive = False
        self._length_known = False  # Content-Length or chunked: else the close ends it
        self._decoder: zlib._Decompress | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._streaming = False  # read by chunks(): only then pause a fast upstream
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._last_data = 0.0
        self._read_timeout = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- the reader's side -----------------------------------------------------------------

    async def send(self, head: bytes, body: bytes, read_timeout: float) -> None:
        """Write the request and wait for the answer's status and headers."""
        assert self._transport is not None
        self.status, self._started, self._headed, self._done = 0, True, False, False
        self._keep_alive = self._length_known = self._streaming = False
        self._decoder = None
        self._chunks.clear()
        self._buffered = 0
        self._read_timeout = read_timeout
        self._last_data = self._loop.time()
        self._timer = self._loop.call_at(self._last_data + read_timeout, self._silence)
        self._transport.writelines((head, body))
        while not self._headed:
            await self._wait()

    async def read(self) -> bytes:
        """The whole body."""
        while not self._done:
            await self._wait()
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces, as they arrive."""
        self._streaming = True
        while True:
            if self._chunks:
                chunk = b"".join(self._chunks)
                self._chunks.clear()
                self._buffered = 0
                if self._paused and self._transport is not None:
                    self._paused = False
                    self._transport.resume_reading()
                yield chunk
            elif self._done:
                return
            else:
                await self._wait()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def reusable(self) -> bool:
        done = self._done and self._error is None and not self._chunks
        return done and self._keep_alive and not self.lost

    def close(self) -> None:
        self._stop_timer()
        if self._transport is not None:
            self._transport.close()

    # -- asyncio's side ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream socket's transport (uvloop's do not subclass asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._started:  # bytes nobody asked for: this connection cannot be trusted
            self.lost = True
            self.close()
            return
        self._last_data = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:  # also what a callback raised, zlib's errors
            self._fail(ConnectionFailed("the upstream's answer is not valid HTTP"), exc)
            self.close()
        else:
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._started and not self._done:
            if self._headed and not self._length_known and exc is None:
                self._finish()  # no length given: the close is the end of the body
            else:
                self._fail(ConnectionFailed("the upstream closed the connection early"), exc)
        self._stop_timer()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    # -- httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self._length_known = True
        elif name == b"content-encoding":
            coding = value.strip().lower()
            if coding in (b"gzip", b"x-gzip", b"deflate"):
                self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
            elif coding not in (b"", b"identity"):
                raise httptools.HttpParserError(f"unsupported content-encoding {coding!r}")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status >= 200:
            self.status = status
            self._headed = True

    def on_body(self, body: bytes) -> None:
        if self.status < 200:
            return
        if self._decoder is not None:
            body = self._decoder.decompress(body)
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and self._streaming and not self._paused and self._transport:
            self._paused = True
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.status < 200:  # an informational answer (103 Early Hints): the real one follows
            self._length_known = False
            self._decoder = None
            return
        self._keep_alive = self._parser.should_keep_alive()
        if self._decoder is not None:
            self._chunks.append(self._decoder.flush())
        self._finish()

    # -- helpers -------------------------------------------------------------------------------

    def _finish(self) -> None:
        self._done = True
        self._started = False
        self._stop_timer()

    def _fail(self, error: BaseException, cause: BaseException | None = None) -> None:
        if self._error is None:
            error.__cause__ = cause
            self._error = error
        self._started = False
        self._stop_timer()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _silence(self) -> None:
        """The read timer: fail if nothing arrived for `read_timeout`, else look again then.
        One timer per answer, moved only when it fires, instead of one per wait."""
        if self._paused:  # the caller is slow, not the upstream
            self._last_data = self._loop.time()
        deadline = self._last_data + self._read_timeout
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._silence)
            return
        self._timer = None
        self._fail(TimeoutError("the upstream went silent"))
        self._wake()
        self.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# What `Client.post` yields: the connection, through which its answer is read.
Response = _Connection
