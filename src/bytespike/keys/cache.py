"""The metered path's key lookups, cached in the process.

A cached entry may be stale, and that is safe: the transaction that places the hold checks
again that the key is live (not revoked, its org not paused) and unchanged since the entry
was read (its `version`, bumped by every change to what the key may do: settings, roll,
suspension). A stale entry is then read anew and the call admitted on the fresh one, so a
change made by any process applies from the next request on, and nothing is ever spent on
a key revoked anywhere. Expiry is checked against the clock on every hit.

Lookups are shared. A miss waits for the lookup of the same key already in flight, if there
is one, instead of reading the key too: under load, every call in flight meets the expiry of
a busy key's entry at once, and each would otherwise take a connection for its own two reads
(past the pool's size, new database sessions). A caller that must not be answered by what
was read before some moment (`reload`'s `since`, from `mark`: a call refused by a limit the
key may since have lost) takes the entry or the lookup in flight if it began after that
moment, else starts its own: a burst of such calls costs one lookup, not one each, and a
change committed before the moment is always seen. Calls whose holds found the key at a
newer version than their entry's (`newer`) take the entry or the lookup in flight if it
read the key at that version or later, else start one, which those that found the change
at once then share. Only the newest lookup's answer is kept.

A lookup for `since`, started while the key's entry is live, reads the key's record alone:
if its `version` is the entry's, nothing the key may do has changed, so the entry's roster
and paying wallet stand, and the entry keeps its expiry (one read, not two, for each call
of a client that keeps calling past its limit).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bytespike.billing import payer
from bytespike.context import Context
from bytespike.errors import BytespikeError
from bytespike.keys import service as keys
from bytespike.keys.repo import KeyRecord

TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CachedKey:
    record: KeyRecord
    digest: str
    roster: dict[str, int | None]  # model → cap micros (None: uncapped), catalog order
    wallet_id: int

    def cap_for(self, model: str) -> int | None:
        return self.roster.get(model)

    def may_call(self, model: str) -> bool:
        return model in self.roster


# A cached key: when it expires (monotonic), the number of the lookup that read it, the key.
Entry = tuple[float, int, CachedKey]


class KeyCache:
    def __init__(
        self, ctx: Context, *, ttl: float = TTL_SECONDS, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._ctx = ctx
        self._ttl = ttl
        self._now = now
        self._entries: dict[str, Entry] = {}
        # The newest lookup of each key in flight, and its number.
        self._loading: dict[str, tuple[int, asyncio.Future[CachedKey]]] = {}
        self._started = 0  # lookups begun: the next one's number

    def mark(self) -> int:
        """A moment, for `reload`: lookups numbered from this on began after it."""
        return self._started

    async def resolve(self, secret: str) -> CachedKey:
        """The key's record, roster and paying wallet; 401 or 403 as `keys.check_standing`
        says (a cached entry that fails it is read anew first: it may be stale)."""
        digest = keys.presented_hash(secret)  # 401 for a malformed credential, before hashing
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > self._now():
            try:
                keys.check_standing(hit[2].record, self._ctx.clock.now())
                return hit[2]
            except BytespikeError:
                pass
        loading = self._loading.get(digest)
        return await asyncio.shield(loading[1] if loading else self._start(digest))

    async def reload(self, digest: str, *, since: int) -> CachedKey:
        """The key as read by a lookup begun at `since` (a `mark`) or later: the cached one's
        or the one in flight if they did, else a new one's. Or its refusal (a lookup's
        refusal is not cached)."""
        hit = self._entries.get(digest)
        if hit is not None and hit[1] >= since:
            return hit[2]
        loading = self._loading.get(digest)
        if loading is not None and loading[0] >= since:
            return await asyncio.shield(loading[1])
        live = hit if hit is not None and hit[0] > self._now() else None
        self.forget(digest)
        return await asyncio.shield(self._start(digest, live))

    async def newer(self, digest: str, version: int) -> CachedKey:
        """The key as read at `version` or later (versions only grow): the live entry if it
        was, else the lookup in flight if it reads so, else a new lookup's, which the calls
        that found the key changed at once then share."""
        while True:
            hit = self._entries.get(digest)
            if hit is not None and hit[2].record.version < version:
                del self._entries[digest]  # older than the key: new calls wait for a lookup
            elif hit is not None and hit[0] > self._now():
                return hit[2]
            loading = self._loading.get(digest)
            if loading is None:
                return await asyncio.shield(self._start(digest))
            found = await asyncio.shield(loading[1])
            if found.record.version >= version:
                return found
            # It began before the change: look again (another caller may have started one).

    def forget(self, digest: str) -> None:
        """Drop the entry; a lookup in flight still answers its callers but is not kept."""
        self._entries.pop(digest, None)
        self._loading.pop(digest, None)

    def _start(self, digest: str, live: Entry | None = None) -> asyncio.Future[CachedKey]:
        """A lookup of the key; given its `live` entry, one that may keep the entry's roster
        and wallet (`_load`)."""
        number, self._started = self._started, self._started + 1
        loading = asyncio.ensure_future(self._load(digest, live[2] if live else None))
        self._loading[digest] = (number, loading)
        # Added before any waiter's: the entry is kept before the first of them resumes.
        loading.add_done_callback(partial(self._loaded, digest, number, live))
        return loading

    def _loaded(
        self,
        digest: str,
        number: int,
        live: Entry | None,
        loading: asyncio.Future[CachedKey],
    ) -> None:
        failed = loading.cancelled() or loading.exception() is not None  # (marks it seen)
        newest = self._loading.get(digest)
        if newest is None or newest[1] is not loading:
            return  # forgotten or superseded meanwhile
        del self._loading[digest]
        if failed:
            self._entries.pop(digest, None)  # a refused key keeps no entry
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # crude but bounded; a miss only costs one lookup
        found = loading.result()
        expires = self._now() + self._ttl
        if live is not None and found.roster is live[2].roster:
            expires = live[0]  # `_load` kept the live entry's roster and wallet: its expiry too
        self._entries[digest] = (expires, number, found)

    async def _load(self, digest: str, live: CachedKey | None = None) -> CachedKey:
        record = await keys.resolve_digest(self._ctx, digest)  # as on every other route
        if live is not None and live.record.version == record.version:
            # The same key (by its digest), unchanged since `live` was read: every change to
            # its roster or to who pays for it moves its version. Only the record, with its
            # rate limit and standing, is read anew.
            return CachedKey(record, digest, live.roster, live.wallet_id)
        async with self._ctx.db.read() as conn:
            roster = dict(await keys.roster(self._ctx, conn, record))
            paying = await payer.resolve(conn, user_id=record.user_id, key_org_id=record.org_id)
        return CachedKey(record=record, digest=digest, roster=roster, wallet_id=paying.wallet_id)
