"""The dispatcher: claims due deliveries from the outbox, signs and sends them, records the
outcome and schedules retries. Runs inside `serve` and as `bytespike worker`.

Delivery is at least once: a claim is a lease, so a dispatcher killed mid-flight only
delays a delivery until its lease runs out. Retries back off exponentially with jitter over
about a day and keep the event's webhook-id. An endpoint whose delivery exhausts the
schedule with no success since that delivery began is disabled, and its owner is told
through a `webhook.endpoint.disabled` event to their other endpoints.

A stopping process (`stop`) lets the dispatcher deliver what is due, for up to its grace
period, then cancels it: a delivery cut half-way is retried once its lease runs out.

Failure policy: a failing database or receiver is logged and retried on the next tick;
nothing is dropped, because nothing leaves the outbox until an outcome is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.clock import as_utc, iso_z
from bytespike.context import Context
from bytespike.errors import InvalidRequest
from bytespike.webhooks import events, outbox, repo, signing, urls
from bytespike.webhooks.signing import SecretBox
from bytespike.webhooks.transport import DeliveryError, Transport

if TYPE_CHECKING:
    from bytespike.metrics.families import Metrics

log = logging.getLogger(__name__)

# Delay after each failed attempt: 9 attempts spread over ~23.6 hours.
SCHEDULE = tuple(
    timedelta(seconds=s) for s in (5, 60, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 8 * 3600, 8 * 3600)
)
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.2  # each delay is scaled by a random factor in [0.8, 1.2]
_EXCERPT_CHARS = 1024


def retry_at(attempt: int, now: datetime, rng: random.Random) -> datetime | None:
    """When to try again after failed attempt number `attempt`; None when exhausted."""
    if attempt >= MAX_ATTEMPTS:
        return None
    delay = SCHEDULE[attempt - 1].total_seconds()
    return now + timedelta(seconds=delay * rng.uniform(1 - JITTER, 1 + JITTER))


class Dispatcher:
    def __init__(
        self,
        ctx: Context,
        transport: Transport,
        *,
        box: SecretBox | None = None,
        rng: random.Random | None = None,
        batch: int | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.ctx = ctx
        self.metrics = metrics  # the server's; `bytespike worker` keeps none
        self.transport = transport
        self.box = box or SecretBox.from_settings(ctx.settings)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.batch = batch or ctx.settings.webhook_batch
        # Long enough that a live attempt always finishes (or times out) inside its lease.
        self.lease = timedelta(seconds=ctx.settings.webhook_timeout_seconds + 30)
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Claim one batch of due deliveries and attempt each; returns how many."""
        now = self.ctx.clock.now()
        # A read first: an idle dispatcher must not take SQLite's write lock every tick,
        # which would queue metered requests' holds behind it.
        async with self.ctx.db.read() as conn:
            if not await outbox.any_due(conn, now=now):
                return 0
        async with self.ctx.db.write() as conn:
            claimed = await outbox.claim(
                conn, now=self.ctx.clock.now(), lease=self.lease, limit=self.batch
            )
        await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    def start(self, poll_seconds: float) -> None:
        """Deliver in the background, looking for due work every `poll_seconds` when idle."""
        self._running = asyncio.create_task(self._run(poll_seconds))

    async def stop(self, within: float) -> None:
        """Deliver what is due (the pass under way, then every pass that finds work), for
        at most `within` seconds; then cancel what is left: it is only leased."""
        self._stopping.set()
        if self._running is None:
            return
        done, _ = await asyncio.wait({self._running}, timeout=within)
        if not done:
            log.warning("webhook deliveries cut at stop; retried when their lease ends")
            self._running.cancel()
        await asyncio.gather(self._running, return_exceptions=True)

    async def _run(self, poll_seconds: float) -> None:
        while True:
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("webhook dispatch failed")
                busy = 0
            if busy:
                continue
            if self._stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), poll_seconds)

    async def _deliver(self, claimed: outbox.Claimed) -> None:
        outcome = await self._attempt(claimed)
        now = self.ctx.clock.now()
        next_at = None if outcome.ok else retry_at(claimed.attempt, now, self.rng)
        async with self.ctx.db.write() as conn:
            settled = await outbox.record(conn, claimed, outcome, now=now, retry_at=next_at)
            if outcome.ok:
                await repo.update(conn, claimed.endpoint_id, last_success_at=now)
            elif settled and next_at is None:
                await self._maybe_disable(conn, claimed, now)
        if self.metrics is not None:
            failed = "retrying" if next_at is not None else "failed"
            self.metrics.webhook_attempted("succeeded" if outcome.ok else failed)
        log.info(
            "webhook attempt",
            extra={
                "delivery_id": claimed.delivery_id,
                "endpoint_id": claimed.endpoint_id,
                "attempt": claimed.attempt,
                "status": outcome.status_code,
                "error": outcome.error,
            },
        )

    async def _attempt(self, claimed: outbox.Claimed) -> outbox.Outcome:
        started = time.perf_counter()
        try:
            urls.check_syntax(claimed.url, allow_private=self.ctx.settings.webhook_allow_private)
            secret = self.box.open(claimed.secret_sealed)
            body = claimed.payload.encode()
            # The timestamp is real send time: receivers compare it with their own clock.
            headers = signing.headers(secret, claimed.event_id, int(time.time()), body)
            response = await self.transport.post(claimed.url, body, headers)
        except (DeliveryError, InvalidRequest, signing.SecretUnreadable) as exc:
            return outbox.Outcome(None, _ms_since(started), str(exc) or "failed", None)
        excerpt = response.body.decode("utf-8", "replace")[:_EXCERPT_CHARS]
        error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
        return outbox.Outcome(response.status, _ms_since(started), error, excerpt)

    async def _maybe_disable(
        self, conn: AsyncConnection, claimed: outbox.Claimed, now: datetime
    ) -> None:
        endpoint = await repo.by_id(conn, claimed.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return
        last_ok = endpoint.last_success_at
        if last_ok is not None and as_utc(last_ok) >= as_utc(claimed.created_at):
            return  # it has worked since this delivery began: a bad event, not a dead endpoint
        reason = f"every attempt to deliver {claimed.event_id} failed for a day"
        await repo.update(conn, endpoint.id, enabled=False, disabled_reason=reason)
        log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id})
        data = {
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "reason": reason,
            "disabled_at": iso_z(now),
        }
        await events.emit(conn, endpoint.wallet_id, events.ENDPOINT_DISABLED, data, now=now)


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
