"""Rate limiter shared by the worker processes of one machine, without Redis: every count
lives in one small memory-mapped file, read and bumped under an exclusive `flock`.

Why a file: `serve --workers N` without Redis needs one count per key across N processes
on one machine. An in-process count would multiply every limit by N; splitting each limit
into N shares fails as soon as load is uneven (the kernel hands connections to workers
unevenly, and one keep-alive connection always reaches the same worker); the database
would put a write on every call, on SQLite behind the one writer (an UPSERT in a SQLite
file of its own costs ~15 µs of CPU a hit, Redis ~120 µs plus a round trip). A shared mapping
costs a hash, two `flock` calls and a few struct reads and writes: about 4 µs of CPU a hit
more than counting in memory (`bench/limiter.py`), under 1 % of a metered call. It counts
exactly, and a worker that dies holding the lock releases it with its file descriptor. It
only reaches the processes of one machine: replicas on several machines share Redis.

The file is a header (magic, slot count, the minute its counts belong to) and a table of
`SLOTS` slots, each a subject's 64-bit hash and its count, found by linear probing. The
first hit of a new minute clears the table, so every count in it is of the current
minute; fixed one-minute windows, as ratelimit/base.py says.

Failure policy: fail open, like the Redis limiter. A table with no free slot left in a key's
probe range (tens of thousands of keys in one minute) allows that key's requests, with one
warning per minute; rate limiting protects capacity, holds protect money.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bytespike.ratelimit.base import Decision, decide, window_of

log = logging.getLogger(__name__)

SLOTS = 1 << 16  # 1 MiB of table: room for ~50,000 keys a minute
MAX_PROBES = 64
_MAGIC = b"bytespike-rl\x00\x00\x00\x01"  # the layout's version in its last byte
_HEADER = struct.Struct("<16sQq")  # magic, slots, the table's window (minutes since 1970)
_WINDOW_AT = 24  # the window's offset in the header
_WINDOW = struct.Struct("<q")
_SLOT = struct.Struct("<QQ")  # subject hash (0: free), count
_TABLE_AT = 64  # the header, padded


class SharedRateLimiter:
    """Counts in the file at `path`, created if missing; every process that opens the same
    file shares them."""

    def __init__(
        self, path: Path, *, slots: int = SLOTS, now: Callable[[], float] = time.time
    ) -> None:
        self._slots = slots
        self._now = now
        self._size = _TABLE_AT + slots * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with self._locked():
                self._initialise(path)
            self._map = mmap.mmap(self._fd, self._size)
        except BaseException:
            os.close(self._fd)
            raise
        self._full_warned = -1  # the window the last "table full" warning was for

    def _initialise(self, path: Path) -> None:
        """Lay the file out, or check an existing one is a table of the same shape."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            os.ftruncate(self._fd, self._size)  # zero-filled: every slot free
            os.pwrite(self._fd, _HEADER.pack(_MAGIC, self._slots, -1), 0)
            return
        header = os.pread(self._fd, _HEADER.size, 0)
        if size != self._size or _HEADER.unpack(header)[:2] != (_MAGIC, self._slots):
            raise ValueError(f"{path} is not a bytespike rate-limit table of {self._slots} slots")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    async def hit(self, subject: str, limit: int) -> Decision:
        now = self._now()
        window = window_of(now)
        digest = hashlib.blake2b(subject.encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "little") or 1  # 0 marks a free slot
        # No await inside: the lock is held for microseconds, never across a suspension.
        with self._locked():
            count = self._count(key, window)
        if count is None:
            if self._full_warned != window:
                self._full_warned = window
                log.warning("rate-limit table full this minute, allowing requests")
            return decide(0, limit, now)
        return decide(count, limit, now)

    def _count(self, key: int, window: int) -> int | None:
        """Bump `key`'s count in the table (the caller holds the lock); None when full."""
        table = self._map
        (current,) = _WINDOW.unpack_from(table, _WINDOW_AT)
        if window > current:  # the minute's first hit, in any process: start the table over
            table[_TABLE_AT:] = bytes(self._size - _TABLE_AT)
            _WINDOW.pack_into(table, _WINDOW_AT, window)
        # A window behind the table's is a hit that read the clock just before another
        # process started the new minute: it counts in the new one.
        index = key % self._slots
        for _ in range(MAX_PROBES):
            offset = _TABLE_AT + index * _SLOT.size
            found, count = _SLOT.unpack_from(table, offset)
            if found in (key, 0):
                _SLOT.pack_into(table, offset, key, count + 1)
                return int(count + 1)
            index = (index + 1) % self._slots
        return None

    async def close(self) -> None:
        self._map.close()
        os.close(self._fd)
