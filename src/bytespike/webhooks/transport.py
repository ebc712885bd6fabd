"""The delivery seam: POST a signed body to a URL and report the status and a capped body.

`HttpTransport` is the real one (aiohttp). Its resolver re-checks every address at connect
time, so an endpoint whose DNS now answers with a private address is refused; redirects are
not followed (a 3xx is a failed attempt) and at most `MAX_RESPONSE_BYTES` are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from bytespike.settings import Settings
from bytespike.webhooks import urls

MAX_RESPONSE_BYTES = 4096


class DeliveryError(Exception):
    """No HTTP status came back: refused address, connection error, timeout."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes  # at most MAX_RESPONSE_BYTES


class Transport(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send once; raises DeliveryError when no response status was received."""
        ...

    async def close(self) -> None: ...


class _SafeResolver(AbstractResolver):
    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not urls.address_allowed(result["host"], allow_private=self._allow_private):
                raise urls.UnsafeAddress(f"{host} resolves to a disallowed address")
        return results

    async def close(self) -> None:
        await self._inner.close()


class HttpTransport:
    def __init__(self, *, timeout: float, allow_private: bool = False) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpTransport:
        return cls(
            timeout=settings.webhook_timeout_seconds, allow_private=settings.webhook_allow_private
        )

    def _client(self) -> aiohttp.ClientSession:
        # Made lazily: a ClientSession must be created inside the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=_SafeResolver(self._allow_private), use_dns_cache=False
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        try:
            self._check_literal(url)
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                excerpt = await response.content.read(MAX_RESPONSE_BYTES)
                return Response(status=response.status, body=excerpt)
        except urls.UnsafeAddress as exc:
            raise DeliveryError(str(exc)) from exc
        except TimeoutError as exc:
            raise DeliveryError("timed out") from exc
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, urls.UnsafeAddress) else exc
            raise DeliveryError(str(cause) or type(cause).__name__) from exc

    def _check_literal(self, url: str) -> None:
        """aiohttp skips the resolver for IP literals, so those are checked here."""
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return
        if not urls.address_allowed(host, allow_private=self._allow_private):
            raise urls.UnsafeAddress(f"{host} is a disallowed address")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            # Lets the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
