"""The metered path's key cache under concurrent calls (keys/cache.py): calls that miss at
once share one lookup, whatever happens to any one of them, and a reload is never answered
by a lookup older than itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bytespike.accounts import service as accounts
from bytespike.billing import payer
from bytespike.context import Context
from bytespike.errors import BytespikeError
from bytespike.keys import service as keys
from bytespike.keys.cache import TTL_SECONDS, CachedKey, KeyCache
from bytespike.keys.repo import KeyRecord
from tests.factories import add_member, make_key, make_org, make_user, wallet_of


class Lookups:
    """Counts the cache's reads of a key; `held()` keeps the next ones waiting until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.gate: asyncio.Event | None = None
        self.read = asyncio.Event()  # a held lookup has read the key
        real: Callable[[Context, str], Awaitable[KeyRecord]] = keys.resolve_digest

        async def counted(ctx: Context, digest: str) -> KeyRecord:
            self.count += 1
            gate = self.gate
            record = await real(ctx, digest)  # read first: what it read is what it answers
            if gate is not None:
                self.read.set()
                await gate.wait()
            return record

        monkeypatch.setattr(keys, "resolve_digest", counted)

    def held(self) -> asyncio.Event:
        self.gate = asyncio.Event()
        return self.gate


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def made(ctx: Context) -> dict[str, Any]:
    await make_user(ctx, "ada")
    return await make_key(ctx, "ada")


@pytest.fixture
def secret(made: dict[str, Any]) -> str:
    return str(made["key"])


async def settled(*calls: Awaitable[Any]) -> list[Any]:
    return await asyncio.gather(*calls, return_exceptions=True)


async def held_across_a_change(
    ctx: Context, made: dict[str, Any], cache: KeyCache, lookups: Lookups
) -> tuple[asyncio.Future[CachedKey], asyncio.Event]:
    """A lookup that has read the key and is held in flight, then the key changed (its rate
    limit to 7): that lookup, and the gate that lets it finish. Later lookups run freely."""
    gate = lookups.held()
    older = asyncio.ensure_future(cache.resolve(str(made["key"])))  # reads, then waits
    await lookups.read.wait()
    await keys.update(ctx, made["id"], keys.KeyChanges(rate_limit=7))
    lookups.gate = None
    return older, gate


async def test_calls_that_meet_an_expired_entry_at_once_read_the_key_once(
    ctx: Context, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups, clock = Lookups(monkeypatch), Monotonic()
    cache = KeyCache(ctx, now=clock)
    first = await cache.resolve(secret)
    clock.now += TTL_SECONDS + 1
    found = await settled(*(cache.resolve(secret) for _ in range(16)))
    assert [k.record for k in found] == [first.record] * 16
    assert lookups.count == 2  # the first call's, then one for the sixteen
    await cache.resolve(secret)
    assert lookups.count == 2  # and its answer is cached


async def test_a_key_revoked_meanwhile_refuses_every_waiter_and_is_read_again_next_time(
    ctx: Context, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups, clock = Lookups(monkeypatch), Monotonic()
    cache = KeyCache(ctx, now=clock)
    key = await cache.resolve(secret)
    await keys.revoke(ctx, key.record.id)
    clock.now += TTL_SECONDS + 1
    refused = await settled(*(cache.resolve(secret) for _ in range(8)))
    assert all(isinstance(r, BytespikeError) and r.status == 401 for r in refused), refused
    assert lookups.count == 2
    with pytest.raises(BytespikeError) as again:
        await cache.resolve(secret)
    assert again.value.status == 401 and lookups.count == 3  # a refusal is not cached


async def test_a_waiter_that_goes_away_leaves_the_lookup_to_the_others(
    ctx: Context, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = Lookups(monkeypatch)
    cache = KeyCache(ctx)
    gate = lookups.held()
    waiters = [asyncio.ensure_future(cache.resolve(secret)) for _ in range(3)]
    await lookups.read.wait()
    waiters[0].cancel()  # the one whose miss started the lookup: its client hung up
    gate.set()
    outcomes = await settled(*waiters)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert [type(o) for o in outcomes[1:]] == [type(outcomes[2])] * 2
    assert outcomes[1].record.id == outcomes[2].record.id
    lookups.gate = None
    await cache.resolve(secret)
    assert lookups.count == 1


async def test_a_reload_is_not_answered_or_overwritten_by_an_older_lookup(
    ctx: Context, made: dict[str, Any], secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller that may refuse only on a read begun after a moment (`reload`'s `since`, a
    `mark` taken after the change) does not take the answer of a lookup begun before, nor
    does that lookup's answer replace its own in the cache."""
    lookups = Lookups(monkeypatch)
    cache = KeyCache(ctx)
    older, gate = await held_across_a_change(ctx, made, cache, lookups)
    since = cache.mark()
    fresh = await cache.reload(keys.presented_hash(secret), since=since)
    assert fresh.record.rate_limit == 7
    gate.set()
    assert (await older).record.rate_limit != 7  # it read before the change
    assert (await cache.resolve(secret)).record.rate_limit == 7  # the cache kept the reload's
    assert lookups.count == 2


async def test_calls_refused_at_once_read_the_key_again_once_and_see_a_change_made_before(
    ctx: Context, made: dict[str, Any], secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a burst of calls over their key's limit does (proxy/pipeline.py `admit`): each
    may refuse only on a read begun after it arrived, and a raise committed before then is
    what they see, read once for all of them."""
    lookups = Lookups(monkeypatch)
    cache = KeyCache(ctx)
    digest = (await cache.resolve(secret)).digest
    await keys.update(ctx, made["id"], keys.KeyChanges(rate_limit=7))
    asked = cache.mark()
    found = await settled(*(cache.reload(digest, since=asked) for _ in range(8)))
    assert [k.record.rate_limit for k in found] == [7] * 8
    assert lookups.count == 2
    await cache.reload(digest, since=asked)  # the entry was read after `asked`: it is live
    assert lookups.count == 2
    await cache.reload(digest, since=cache.mark())
    assert lookups.count == 3


class PayerReads:
    """Counts the cache's second read of a key: who pays for it (after its roster)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = payer.resolve

        async def counted(conn: Any, *, user_id: int, key_org_id: int | None) -> payer.Payer:
            self.count += 1
            return await real(conn, user_id=user_id, key_org_id=key_org_id)

        monkeypatch.setattr(payer, "resolve", counted)


async def test_a_refused_call_reads_only_the_record_of_a_key_unchanged_since_its_entry(
    ctx: Context, made: dict[str, Any], secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client calling past its limit one call at a time: each refusal reads the key's
    record anew (its limit may have been raised), and while the key's version is the cached
    entry's, its roster and wallet are the entry's, not read again; the entry expires when
    it would have."""
    lookups, payers, clock = Lookups(monkeypatch), PayerReads(monkeypatch), Monotonic()
    cache = KeyCache(ctx, now=clock)
    first = await cache.resolve(secret)
    for _ in range(3):
        clock.now += TTL_SECONDS / 4
        again = await cache.reload(first.digest, since=cache.mark())
        assert again.record == first.record
        assert (again.roster, again.wallet_id) == (first.roster, first.wallet_id)
    assert (lookups.count, payers.count) == (4, 1)
    await cache.resolve(secret)
    assert lookups.count == 4  # the last reload's answer is cached ...
    clock.now += TTL_SECONDS / 4
    await cache.resolve(secret)
    assert (lookups.count, payers.count) == (5, 2)  # ... until the first read's entry expires


async def test_a_refused_call_reads_whole_a_key_changed_since_its_entry(
    ctx: Context, made: dict[str, Any], secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change to the key's roster, or to who pays for it, moves its version: the next
    refusal's read sees it and reads the roster and the paying wallet again."""
    payers = PayerReads(monkeypatch)
    cache = KeyCache(ctx)
    first = await cache.resolve(secret)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada")
    await accounts.update_user(ctx, "ada", tier="enterprise")
    moved = await cache.reload(first.digest, since=cache.mark())
    assert moved.wallet_id == await wallet_of(ctx, org="Dosia AI") != first.wallet_id
    model = next(iter(first.roster))
    await keys.update(ctx, made["id"], keys.KeyChanges(models=[(model, 5_000_000)]))
    capped = await cache.reload(first.digest, since=cache.mark())
    assert (first.roster[model], capped.roster[model]) == (None, 5_000_000)
    assert payers.count == 3


async def test_calls_that_find_their_key_changed_at_once_read_it_again_once(
    ctx: Context, made: dict[str, Any], secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As calls whose holds found the key at a newer version do (proxy/pipeline.py
    `reserve`): they share one lookup, which reads the key as the holds found it, and the
    cache then answers calls at that version without reading it again."""
    lookups = Lookups(monkeypatch)
    cache = KeyCache(ctx)
    stale = await cache.resolve(secret)
    await keys.update(ctx, made["id"], keys.KeyChanges(rate_limit=7))
    seen = (await keys.resolve_digest(ctx, stale.digest)).version  # what a hold would find
    lookups.count = 0
    found = await settled(*(cache.newer(stale.digest, seen) for _ in range(8)))
    assert [(k.record.version, k.record.rate_limit) for k in found] == [(seen, 7)] * 8
    assert seen > stale.record.version and lookups.count == 1
    await cache.newer(stale.digest, seen)
    assert (await cache.resolve(secret)).record.rate_limit == 7
    assert lookups.count == 1


async def test_a_changed_key_is_not_answered_by_a_lookup_that_read_it_before(
    ctx: Context, made: dict[str, Any], secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup in flight that read the key before the change the hold found answers its
    own callers only; the calls that found the change wait for it, then read again."""
    lookups = Lookups(monkeypatch)
    cache = KeyCache(ctx)
    older, gate = await held_across_a_change(ctx, made, cache, lookups)
    digest = keys.presented_hash(secret)
    seen = (await keys.resolve_digest(ctx, digest)).version
    lookups.count = 0
    changed = [asyncio.ensure_future(cache.newer(digest, seen)) for _ in range(2)]
    await asyncio.sleep(0)
    assert lookups.count == 0  # both wait for the lookup in flight first
    gate.set()
    assert (await older).record.rate_limit != 7
    assert [(await c).record.rate_limit for c in changed] == [7, 7]
    assert lookups.count == 1  # then one more, shared
