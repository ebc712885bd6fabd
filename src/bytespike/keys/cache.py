"""The metered path's key lookups, cached in the process.

A cached entry may be stale, and that is safe: it only says which wallet and roster a key
had. Whether the key is still live (not revoked, its org not paused) is checked again in the
transaction that places the hold, so nothing is ever spent on a key revoked by any process;
that check evicts the entry and the next request is refused outright.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bytespike.billing import payer
from bytespike.context import Context
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
        """The key's record, roster and paying wallet, or 401."""
        digest = keys.presented_hash(secret)  # 401 for a malformed credential, before hashing
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > self._now():
            return hit[1]
        entry = await self._load(secret, digest)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # crude but bounded; a miss only costs one lookup
        self._entries[digest] = (self._now() + self._ttl, entry)
        return entry

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)

    async def _load(self, secret: str, digest: str) -> CachedKey:
        record = await keys.resolve(self._ctx, secret)  # the 401s, as on every other route
        async with self._ctx.db.read() as conn:
            roster = dict(await keys.roster(self._ctx, conn, record))
            paying = await payer.resolve(conn, user_id=record.user_id, key_org_id=record.org_id)
        return CachedKey(record=record, digest=digest, roster=roster, wallet_id=paying.wallet_id)
