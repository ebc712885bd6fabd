"""The metered path's key lookups, cached in the process.

A cached entry may be stale, and that is safe: the transaction that places the hold checks
again that the key is live (not revoked, its org not paused) and unchanged since the entry
was read (its `version`, bumped by every change to what the key may do: settings, roll,
suspension). A stale entry is then read anew and the call admitted on the fresh one, so a
change made by any process applies from the next request on, and nothing is ever spent on
a key revoked anywhere. Expiry is checked against the clock on every hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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


class KeyCache:
    def __init__(
        self, ctx: Context, *, ttl: float = TTL_SECONDS, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._ctx = ctx
        self._ttl = ttl
        self._now = now
        self._entries: dict[str, tuple[float, CachedKey]] = {}

    async def resolve(self, secret: str) -> CachedKey:
        """The key's record, roster and paying wallet; 401 or 403 as `keys.check_standing`
        says (a cached entry that fails it is read anew first: it may be stale)."""
        digest = keys.presented_hash(secret)  # 401 for a malformed credential, before hashing
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > self._now():
            try:
                keys.check_standing(hit[1].record, self._ctx.clock.now())
                return hit[1]
            except BytespikeError:
                pass
        return await self.reload(digest)

    async def reload(self, digest: str) -> CachedKey:
        """The key read anew from the database (and cached), or its refusal."""
        self.forget(digest)
        entry = await self._load(digest)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # crude but bounded; a miss only costs one lookup
        self._entries[digest] = (self._now() + self._ttl, entry)
        return entry

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)

    async def _load(self, digest: str) -> CachedKey:
        record = await keys.resolve_digest(self._ctx, digest)  # as on every other route
        async with self._ctx.db.read() as conn:
            roster = dict(await keys.roster(self._ctx, conn, record))
            paying = await payer.resolve(conn, user_id=record.user_id, key_org_id=record.org_id)
        return CachedKey(record=record, digest=digest, roster=roster, wallet_id=paying.wallet_id)
