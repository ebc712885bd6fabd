"""Database faults a test can cause: a TCP relay to PostgreSQL that it cuts (the host gone
away), one that drops a reply (a commit whose answer is lost), and the termination of a
database's other backends (the server killing them)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bytespike.db.engine import async_url
from tests.processes import free_port


class Relay:
    """A TCP relay to PostgreSQL that a test can cut: its connections are dropped and its
    port refuses new ones, as when the database host goes away, until it is resumed."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def resume(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        if self._server is None or not self._server.is_serving():
            # Cut while this connection was being made (under load, it happens): it goes too.
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pipes = [self._pipe(reader, up_writer), self._pipe(up_reader, writer)]
        tasks = [asyncio.ensure_future(pipe) for pipe in pipes]
        self._pipes.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()


class ReplyDropper:
    """A TCP relay to PostgreSQL that, once `armed`, lets the next message a client sends
    reach the server and drops the server's reply, then the connection: a statement that
    committed while its connection was lost."""

    DROP_AFTER_SECONDS = 0.3  # ample for the local server to have run and committed it

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.armed = False
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for transport in self._transports:
            transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        ends = (writer.transport, up_writer.transport)
        self._transports.update(ends)
        dropping = asyncio.Event()

        def cut() -> None:
            for end in ends:
                end.abort()

        async def up() -> None:
            while data := await reader.read(65536):
                if self.armed:
                    self.armed = False
                    dropping.set()
                    asyncio.get_running_loop().call_later(self.DROP_AFTER_SECONDS, cut)
                up_writer.write(data)
                await up_writer.drain()

        async def down() -> None:
            while data := await up_reader.read(65536):
                if not dropping.is_set():
                    writer.write(data)
                    await writer.drain()

        # Either side ending ends both: a client closing waits to see the server close.
        pipes = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        cut()
        await asyncio.gather(*pipes, return_exceptions=True)


# Every connection to this test's own database but the asking one (the database is this
# test session's, nobody else's); each terminated and waited for (PostgreSQL 14+: the
# timeout, in ms, only bounds the wait), so none is still half-alive afterwards. A backend
# listed may have exited by itself before its turn (under load, one the pool let go of):
# then its termination is false.
TERMINATE = sa.text(
    "SELECT count(*), count(*) FILTER (WHERE pg_terminate_backend(pid, 60000))"
    " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def terminate_other_backends(url: str) -> tuple[int, int]:
    """Terminate every other connection to `url`'s database: (listed, terminated)."""
    engine = create_async_engine(async_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            listed, terminated = (await conn.execute(TERMINATE)).one()
            return int(listed), int(terminated)
    finally:
        await engine.dispose()
