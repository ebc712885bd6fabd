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
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: IPv4-compatible (::/96,
# deprecated), NAT64's well-known prefix (RFC 6052). A NAT64 gateway connects to that IPv4.
_LAST_32 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))
# NAT64 local use (RFC 8215): not globally reachable (older Pythons call it global), and the
# operator picks the prefix length, hence where the IPv4 address sits (RFC 6052, 2.2).
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class UnsafeAddress(Exception):
    """The host resolves to an address webhooks must not reach."""


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """Whether a delivery may connect to `address`. An IPv6 address that embeds an IPv4 one
    (mapped, compatible, NAT64, 6to4, Teredo) reaches that IPv4 address through a gateway,
    so the IPv4 address must be allowed too; metadata services never are, even in private mode."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 socket in IPv6 dress: only the IPv4 address counts
    embedded = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
    if ip in _METADATA or any(v4 in _METADATA for v4 in embedded):
        return False
    if allow_private:
        return True
    if ip in _NAT64_LOCAL:
        return False
    return all(_public(a) for a in (ip, *embedded))


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address `ip` may carry for a translator or tunnel to connect to."""
    found: list[ipaddress.IPv4Address] = []
    if ip in _NAT64_LOCAL:
        found.extend(_rfc6052_candidates(int(ip)))
    elif any(ip in prefix for prefix in _LAST_32):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # the server and the (de-obfuscated) client
    return found


def _rfc6052_candidates(bits: int) -> list[ipaddress.IPv4Address]:
    """The IPv4 address after a /48, /56, /64 or /96 NAT64 prefix. RFC 6052 skips bits
    64-71: with those squeezed out, the address follows the prefix directly (120 bits)."""
    squeezed = ((bits >> 64) << 56) | (bits & ((1 << 56) - 1))
    found = [ipaddress.IPv4Address((squeezed >> (88 - n)) & 0xFFFFFFFF) for n in (48, 56, 64)]
    return [*found, ipaddress.IPv4Address(bits & 0xFFFFFFFF)]


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
