"""Which webhook URLs may be called: https to public addresses only (no SSRF into the host's
network). Checked at registration, and again at delivery by the transport's resolver, so a
DNS answer that changes after registration cannot point a delivery inward."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from bytespike.errors import InvalidRequest

MAX_URL = 2048
# Cloud metadata services; most are link-local already, these are not all.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}


class UnsafeAddress(Exception):
    """The host resolves to an address webhooks must not reach."""


def address_allowed(address: str, *, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return False
    if allow_private:
        return True
    return ip.is_global and not ip.is_multicast


def check_syntax(url: str, *, allow_private: bool) -> str:
    """The URL's host, or 400: https (http only when private targets are allowed), no userinfo."""
    if len(url) > MAX_URL:
        raise InvalidRequest(f"url: at most {MAX_URL} characters")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise InvalidRequest("url: must be an https:// URL")
    if not parts.hostname:
        raise InvalidRequest("url: has no host")
    if parts.username or parts.password:
        raise InvalidRequest("url: must not carry credentials")
    try:
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError as exc:
        raise InvalidRequest("url: invalid port") from exc
    return parts.hostname


async def resolve(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeAddress(f"cannot resolve {host!r}") from exc
    return [str(info[4][0]) for info in infos]


async def check(url: str, *, allow_private: bool) -> None:
    """400 unless `url` is an allowed scheme whose host resolves only to allowed addresses."""
    host = check_syntax(url, allow_private=allow_private)
    try:
        addresses = await resolve(host)
    except UnsafeAddress as exc:
        raise InvalidRequest(f"url: {exc}") from exc
    if not addresses or not all(address_allowed(a, allow_private=allow_private) for a in addresses):
        raise InvalidRequest(
            "url: must not point at loopback, private, link-local or metadata addresses"
        )
