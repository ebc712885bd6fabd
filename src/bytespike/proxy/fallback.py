"""Fallback across a model's deployments: the one exchange a metered call sends, trying the
deployments its plan lists (upstream/deployments.py) in order until one answers.

A deployment that fails before anything has reached the client (it could not be reached,
was too slow, answered 429 or 5xx) is followed by the next one, up to the plan's number of
tries. A stream commits to a deployment with its first event, which is when
streaming.respond starts the client's answer: every retry happens before the client's first
byte. All of it runs inside the call's one hold, so the client gets one answer and is billed
once, at the model's price, for the attempt that answered; each attempt is listed on the
usage record (`attempts`).

The first deployment that can take the request is translated before the hold (a request
none can take is a 400 there); the others only when their turn comes, and one that cannot
take the request is passed over: nothing about the request can fail the call after the hold.

Failure policy: any other failure is the answer and is not retried (a 4xx other than 429 is
the request's fault, a malformed 2xx may have been billed upstream), nor is a stream that
breaks after its first event. When the tries run out, the last failure reaches the client
as it would without fallback. Each outcome feeds its deployment's breaker; a deployment
whose breaker is open is skipped, unless every one is, when all are tried anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from bytespike.errors import InvalidRequest
from bytespike.proxy import streaming
from bytespike.upstream import deployments
from bytespike.upstream.base import UpstreamError, UpstreamFailure
from bytespike.upstream.deployments import Attempt, Attempts, Plan, Route

if TYPE_CHECKING:
    from starlette.requests import Request

    from bytespike.keys.cache import CachedKey
    from bytespike.proxy.pipeline import Answer, CallSpec, Exchange, Format, Gateway
    from bytespike.proxy.streaming import Meter

Translate = Callable[[Route], "Exchange"]


def exchange(fmt: Format, spec: CallSpec, plan: Plan, request: Request) -> Fallback:
    """The call, translated for the first planned deployment that can take it; 400
    (InvalidRequest, the first deployment's) if none can."""

    def translate(route: Route) -> Exchange:
        return fmt.exchange(spec, plan.model.on(route.deployment), route.provider, request)

    fallback = Fallback(plan, translate)
    refusal = None
    for i in range(len(plan.routes)):
        try:
            fallback.translated(i)
        except InvalidRequest as exc:
            refusal = refusal or exc
            continue
        return fallback
    assert refusal is not None  # a plan has at least one route
    raise refusal


class Fallback:
    """An Exchange (proxy/pipeline.py) over several: each verb goes to the deployment whose
    turn it is, and the stream verbs to the one that answered."""

    def __init__(self, plan: Plan, translate: Translate) -> None:
        self._plan = plan
        self._translate = translate
        self._exchanges: dict[int, Exchange | None] = {}  # None: cannot take the request
        self._answering: tuple[Route, Exchange] | None = None
        self._last: UpstreamFailure | None = None
        self.attempts = Attempts(planned=plan.routes[0].provider.name)

    def translated(self, i: int) -> Exchange | None:
        """The call for the plan's `i`th route, translated once; the first time raises what
        its translation raises, later times are None for a route that refused."""
        if i not in self._exchanges:
            self._exchanges[i] = None
            self._exchanges[i] = self._translate(self._plan.routes[i])
        return self._exchanges[i]

    async def complete(self, max_tokens: int) -> Answer:
        for route, exchange in self._turns():
            started = time.perf_counter()
            try:
                answer = await exchange.complete(max_tokens)
            except UpstreamFailure as failure:
                if self._failed(route, failure, started):
                    continue
                raise
            self._answered(route, exchange, started)
            return answer
        raise self._spent()

    async def events(self, max_tokens: int) -> AsyncGenerator[Any, None]:
        source, head = await self._open(max_tokens)
        async with contextlib.aclosing(source):
            yield head
            async for item in source:
                yield item

    def frames(self, item: Any, meter: Meter) -> Iterable[bytes]:
        return self._answered_exchange().frames(item, meter)

    def closing(self) -> Iterable[bytes]:
        return self._answered_exchange().closing()

    def broken(self, failure: UpstreamFailure) -> bytes:
        assert self._answering is not None  # a stream breaks after its first event
        route, exchange = self._answering
        if deployments.retryable(failure):
            route.breaker.failed()  # too late to fall back, but the deployment is failing
        return exchange.broken(failure)

    async def keep(self, gw: Gateway, key: CachedKey) -> None:
        """What the answering exchange stores (pipeline.Keeping), if it stores anything."""
        keep = getattr(self._answering[1], "keep", None) if self._answering else None
        if keep is not None:
            await keep(gw, key)

    async def _open(self, max_tokens: int) -> tuple[AsyncGenerator[Any, None], Any]:
        """The first stream whose first event arrives, with that event."""
        for route, exchange in self._turns():
            started = time.perf_counter()
            source = exchange.events(max_tokens)
            try:
                head = await streaming.first(source)
            except BaseException as exc:
                await source.aclose()
                if isinstance(exc, UpstreamFailure) and self._failed(route, exc, started):
                    continue
                raise
            self._answered(route, exchange, started)
            return source, head
        raise self._spent()

    def _turns(self) -> Iterator[tuple[Route, Exchange]]:
        """The routes to try, in plan order, at most the plan's tries: those that can take
        the request and whose breaker lets the call through; if none does, all of them."""
        made = 0
        for ignore_breakers in (False, True):
            for i, route in enumerate(self._plan.routes):
                if made == self._plan.attempts:
                    return
                exchange = self._translation(i)
                if exchange is None or not (ignore_breakers or route.breaker.claim()):
                    continue
                made += 1
                yield route, exchange
            if made:
                return

    def _translation(self, i: int) -> Exchange | None:
        try:
            return self.translated(i)
        except InvalidRequest:
            return None  # this deployment cannot take the request: its turn is passed over

    def _failed(self, route: Route, failure: UpstreamFailure, started: float) -> bool:
        """Record a failed attempt; True if the next deployment may be tried."""
        retryable = deployments.retryable(failure)
        if retryable:
            route.breaker.failed()
        else:
            route.breaker.succeeded()  # it answered: the failure is the request's
        status = failure.upstream_status if isinstance(failure, UpstreamError) else None
        self._record(route, failure.usage_status, started, status)
        self._last = failure
        return retryable

    def _answered(self, route: Route, exchange: Exchange, started: float) -> None:
        route.breaker.succeeded()
        self._record(route, "ok", started)
        self._answering = (route, exchange)

    def _record(
        self, route: Route, outcome: str, started: float, status: int | None = None
    ) -> None:
        latency_ms = int((time.perf_counter() - started) * 1000)
        made = Attempt(route.deployment.name, route.provider.name, outcome, latency_ms, status)
        self.attempts.made.append(made)

    def _answered_exchange(self) -> Exchange:
        assert self._answering is not None  # frames come only after the first event
        return self._answering[1]

    def _spent(self) -> UpstreamFailure:
        """What the call answers when every try failed over: the last failure."""
        assert self._last is not None  # _turns yields at least the first translated route
        return self._last
