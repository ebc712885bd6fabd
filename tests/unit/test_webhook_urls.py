"""Which addresses a webhook may reach: an IPv6 address that carries an IPv4 one (mapped,
compatible, NAT64, 6to4, Teredo) is judged by that IPv4 address too, because a translator
or tunnel connects to it; metadata services are refused even where private targets are not."""

from __future__ import annotations

import ipaddress

import pytest

from bytespike.webhooks.urls import address_allowed, embedded_ipv4


def teredo(server: str, client: str) -> str:
    """A Teredo address (RFC 4380): 2001::/32, server, flags, port and client obfuscated."""
    bits = (0x2001 << 112) | (int(ipaddress.IPv4Address(server)) << 64) | (0x8000 << 48)
    bits |= (0x63BF << 32) | (~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF)
    return str(ipaddress.IPv6Address(bits))


REFUSED_IN_PUBLIC_MODE = [
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::c0a8:101",  # NAT64 of 192.168.1.1
    "64:ff9b::6440:1",  # NAT64 of 100.64.0.1 (shared address space: not global)
    "64:ff9b:1::808:808",  # NAT64 local use: not globally reachable whatever it carries
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "::127.0.0.1",  # IPv4-compatible (deprecated) loopback
    "::10.0.0.1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    teredo("65.54.227.120", "10.0.0.1"),
    teredo("65.54.227.120", "127.0.0.1"),
    "127.0.0.1",
    "10.0.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
]

# Metadata services, plain and embedded: refused even with BYTESPIKE_WEBHOOK_ALLOW_PRIVATE.
METADATA = [
    "169.254.169.254",
    "100.100.100.200",
    "fd00:ec2::254",
    "::ffff:169.254.169.254",
    "::169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::6464:64c8",  # NAT64 of 100.100.100.200
    "64:ff9b:1::a9fe:a9fe",  # NAT64 local use, /96 prefix
    "64:ff9b:1:a9fe:a9:fe00::",  # NAT64 local use, /48 prefix (bits 64-71 skipped)
    "64:ff9b:1:ffa9:fe:a9fe::",  # NAT64 local use, /56 prefix
    "64:ff9b:1:0:a9:fea9:fe00:0",  # NAT64 local use, /64 prefix
    "2002:a9fe:a9fe::",
    "2002:6464:64c8::1",
    teredo("65.54.227.120", "169.254.169.254"),
    teredo("169.254.169.254", "8.8.8.8"),
]

# Global IPv6 addresses, some carrying a global IPv4 address: they stay allowed.
ALLOWED = [
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "::ffff:8.8.8.8",
    "8.8.8.8",
]


@pytest.mark.parametrize("address", REFUSED_IN_PUBLIC_MODE + METADATA)
def test_refused_when_only_public_targets_are_allowed(address):
    assert not address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", METADATA)
def test_metadata_is_refused_in_every_form_even_when_private_targets_are_allowed(address):
    assert not address_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", REFUSED_IN_PUBLIC_MODE)
def test_private_targets_are_allowed_when_configured(address):
    assert address_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", ALLOWED)
def test_global_addresses_stay_allowed(address):
    assert address_allowed(address, allow_private=False)
    assert address_allowed(address, allow_private=True)


def test_a_zone_index_is_ignored():
    assert not address_allowed("fe80::1%eth0", allow_private=False)


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("64:ff9b::a00:1", "10.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
        ("2002:7f00:1::", "127.0.0.1"),
        (teredo("65.54.227.120", "10.0.0.1"), "10.0.0.1"),
        (teredo("65.54.227.120", "10.0.0.1"), "65.54.227.120"),
        ("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254"),
    ],
)
def test_embedded_ipv4_finds_the_carried_address(address, carried):
    assert ipaddress.IPv4Address(carried) in embedded_ipv4(ipaddress.IPv6Address(address))


def test_a_plain_global_ipv6_address_carries_nothing():
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) == []
