"""The upstream HTTP client (upstream/client.py) against a raw TCP server that answers with
exactly the bytes each test gives it: keep-alive reuse, the three ways a body's end is
known, gzip, flow control, the pool's bound, and each wire failure named as the transport
contract says (ConnectionFailed, TimeoutError), with the connection never reused after."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bytespike.upstream.client import Client, ConnectionFailed, Limits

LIMITS = Limits(connect=5.0, read=5.0)
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class Server:
    """Answers each request with `answer(n)` (n counts requests), then keeps or closes."""

    answer: Callable[[int], list[bytes]]
    close_after: bool = False
    pause: float = 0.0  # seconds between the pieces of an answer
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    url: str = ""
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                for piece in self.answer(len(self.requests)):
                    writer.write(piece)
                    await writer.drain()
                    if self.pause:
                        await asyncio.sleep(self.pause)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the test is over (serving() cancels what is left)
        finally:
            writer.close()


@asynccontextmanager
async def serving(server: Server, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    server.url = f"{scheme}://127.0.0.1:{port}/v1/chat/completions?x=1"
    try:
        yield server
    finally:
        listener.close()
        for task in server.handlers:
            task.cancel()
        await asyncio.gather(*server.handlers)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = Client(10)
    yield client
    await client.close()


async def post(client: Client, url: str, limits: Limits = LIMITS) -> tuple[int, bytes]:
    async with client.post(url, b'{"a":1}', {"Authorization": "Bearer k"}, limits) as answer:
        return answer.status, await answer.read()


async def test_a_request_carries_its_body_and_headers_and_the_connection_is_reused(
    client: Client,
) -> None:
    async with serving(Server(lambda n: [OK])) as server:
        for _ in range(3):
            assert await post(client, server.url) == (200, b"{}")
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in first
    assert b"\r\nAuthorization: Bearer k\r\n" in first
    assert first.endswith(b'Content-Length: 7\r\n\r\n{"a":1}')


async def test_chunked_and_read_to_close_bodies_are_read_whole(client: Client) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    async with serving(Server(lambda n: [chunked[:50], chunked[50:]])) as server:
        assert await post(client, server.url) == (200, b"abcde")
        assert await post(client, server.url) == (200, b"abcde")
        assert server.connections == 1
    until_close = b"HTTP/1.1 200 OK\r\n\r\nno length, the close ends it"
    async with serving(Server(lambda n: [until_close], close_after=True)) as server:
        assert await post(client, server.url) == (200, b"no length, the close ends it")
        assert await post(client, server.url) == (200, b"no length, the close ends it")
        assert server.connections == 2


async def test_an_answer_saying_connection_close_is_not_followed_on_its_connection(
    client: Client,
) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with serving(Server(lambda n: [closing])) as server:  # the server keeps it open
        assert await post(client, server.url) == (200, b"{}")
        assert await post(client, server.url) == (200, b"{}")
        assert server.connections == 2


async def test_a_gzip_body_is_decoded(client: Client) -> None:
    packed = gzip.compress(b'{"text": "' + b"x" * 5000 + b'"}')
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
    async with serving(Server(lambda n: [head + packed])) as server:
        status, body = await post(client, server.url)
    assert (status, len(body), body[-4:]) == (200, 5012, b'xx"}')


async def test_a_stream_arrives_piece_by_piece_and_a_slow_reader_gets_all_of_it(
    client: Client,
) -> None:
    pieces = [b"%x\r\n%s\r\n" % (65536, bytes([65 + i % 26]) * 65536) for i in range(64)]
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    stream = [head, *pieces, b"0\r\n\r\n"]
    async with serving(Server(lambda n: stream if n == 1 else [OK])) as server:
        async with client.post(server.url, b"{}", {}, LIMITS) as answer:
            got = []
            async for chunk in answer.chunks():
                got.append(chunk)
                await asyncio.sleep(0.001)  # slower than the upstream: reading pauses
        body = b"".join(got)
        assert len(body) == 64 * 65536
        assert body[:1] == b"A" and body[-1:] == bytes([65 + 63 % 26])
        assert await post(client, server.url) == (200, b"{}")  # the connection is clean
        assert server.connections == 1


async def test_an_answer_cut_short_fails_and_its_connection_is_not_reused(
    client: Client,
) -> None:
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    async with serving(Server(lambda n: [short] if n == 1 else [OK], close_after=True)) as server:
        with pytest.raises(ConnectionFailed, match="closed the connection early"):
            await post(client, server.url)
        assert await post(client, server.url) == (200, b"{}")
        assert server.connections == 2


async def test_an_answer_that_is_not_http_fails(client: Client) -> None:
    async with serving(Server(lambda n: [b"SSH-2.0-OpenSSH_9.6\r\n"])) as server:
        with pytest.raises(ConnectionFailed, match="not valid HTTP"):
            await post(client, server.url)


async def test_a_silence_past_the_read_timeout_is_a_timeout_even_mid_stream(
    client: Client,
) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    async with serving(Server(lambda n: [head, b""], pause=2.0)) as server:
        started = asyncio.get_running_loop().time()
        async with client.post(server.url, b"{}", {}, Limits(connect=5, read=0.3)) as answer:
            pieces = answer.chunks()
            assert await anext(pieces) == b"abc"
            with pytest.raises(TimeoutError):
                await anext(pieces)
        assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_refused_connection_fails(client: Client) -> None:
    async with serving(Server(lambda n: [OK])) as server:
        url = server.url
    with pytest.raises(ConnectionFailed, match="could not connect"):
        await post(client, url)


async def test_the_pool_bounds_the_calls_in_flight() -> None:
    client = Client(1)
    try:
        async with serving(Server(lambda n: [OK], pause=0.05)) as server:
            results = await asyncio.gather(*(post(client, server.url) for _ in range(4)))
        assert results == [(200, b"{}")] * 4
        assert server.connections == 1  # four calls, one after another, on one connection
    finally:
        await client.close()


async def test_a_header_value_with_a_line_break_is_never_sent(client: Client) -> None:
    async with serving(Server(lambda n: [OK])) as server:
        with pytest.raises(ConnectionFailed, match="line break"):
            async with client.post(server.url, b"{}", {"x-beta": "a\r\nx-evil: 1"}, LIMITS):
                pass
        assert server.requests == []


async def test_a_reader_that_stops_early_does_not_leave_the_rest_for_the_next_call(
    client: Client,
) -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"
    async with serving(Server(lambda n: [first, b"abc", b"def"] if n == 1 else [OK])) as server:
        async with client.post(server.url, b"{}", {}, LIMITS) as answer:
            assert answer.status == 200  # left without reading the body
        assert await post(client, server.url) == (200, b"{}")
        assert server.connections == 2


def certificates(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA (written to a PEM file) and a server context whose certificate it signed for
    127.0.0.1: what a private upstream behind TLS looks like."""
    now = datetime.datetime.now(datetime.UTC)

    def signed(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            builder = builder.add_extension(x509.SubjectAlternativeName([address]), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = signed("test CA", ca_key, ca_name, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = signed("127.0.0.1", leaf_key, ca_name, ca_key, ca=False)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    return ca_file, context


async def test_tls_upstreams_are_verified_against_the_trusted_cas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, context = certificates(tmp_path)
    async with serving(Server(lambda n: [OK]), context) as server:
        untrusting = Client(2)  # the system's CAs only: this upstream's CA is not one
        with pytest.raises(ConnectionFailed, match="SSLCertVerificationError"):
            await post(untrusting, server.url)
        await untrusting.close()
        # SSL_CERT_FILE names the CA bundle to trust, as for any OpenSSL client.
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        trusting = Client(2)
        assert await post(trusting, server.url) == (200, b"{}")
        assert await post(trusting, server.url) == (200, b"{}")
        await trusting.close()
    assert (
        server.connections == 1
    )  # both calls on one connection (a refused handshake never counts)
