"""A model's deployments at run time: the order a call tries them in, which failures move a
call on to the next one, each deployment's circuit breaker, and the attempts a call made.

Order: by `priority` (lowest first); within a priority, a weighted random order drawn from
an injected `random.Random`, so calls spread over equals by `weight` (and so do their
fallbacks), and a seeded generator makes it repeatable.

Breakers are per process: each `serve` worker and each replica learns on its own that a
deployment is failing (a few calls each), which needs no shared store on the request path.
After `failures` consecutive failures a deployment is skipped for `cooldown`; then one call
is let through as a probe (another one per further cool-down, should a probe never report):
its success closes the breaker, its failure opens it for another cool-down.

Failure policy: a breaker routes calls around a failing deployment; it never refuses a
call. When every deployment of a model is cooling down, they are all tried anyway
(proxy/fallback.py), so a model with one deployment behaves as if it had no breaker.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bytespike.catalog import Deployment, Model
from bytespike.clock import Clock
from bytespike.records import record
from bytespike.upstream.base import (
    Provider,
    UpstreamError,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)


def order(deployments: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    """The order a call tries `deployments` in: by priority, then a weighted random draw
    without replacement among each priority's deployments."""
    if len(deployments) == 1:
        return list(deployments)
    tried: list[Deployment] = []
    for priority in sorted({d.priority for d in deployments}):
        pool = [d for d in deployments if d.priority == priority]
        while len(pool) > 1:
            weights = [d.weight for d in pool]
            tried.append(pool.pop(rng.choices(range(len(pool)), weights=weights)[0]))
        tried.extend(pool)
    return tried


def retryable(failure: UpstreamFailure) -> bool:
    """Whether another deployment may answer where this one failed: it could not be reached,
    was too slow, or answered 429 or 5xx. Any other failure (a 4xx: the request's fault; a
    malformed 2xx, which the upstream may have billed) would be the same anywhere."""
    if isinstance(failure, UpstreamTimeout | UpstreamUnavailable):
        return True
    if isinstance(failure, UpstreamError):
        return failure.upstream_status == 429 or failure.upstream_status >= 500
    return False


class Listener(Protocol):
    """Told when a deployment starts or stops taking calls (a /metrics gauge)."""

    def __call__(self, model: str, deployment: str, *, up: bool) -> None: ...


class Breaker:
    """One deployment's circuit breaker (see the module's docstring). `changed(up)` is told
    when it opens (up=False) and when it closes again (up=True)."""

    def __init__(
        self,
        clock: Clock,
        *,
        failures: int,
        cooldown: timedelta,
        changed: Callable[[bool], None] | None = None,
    ) -> None:
        self._clock = clock
        self._threshold = failures
        self._cooldown = cooldown
        self._changed = changed
        self.failures = 0  # consecutive, since the last success
        self._opened_at: datetime | None = None
        self._next_probe: datetime | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """closed (calls go through), open (skipped until its cool-down ends), or half_open
        (a probe call is on its way)."""
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._probing else "open"

    def claim(self) -> bool:
        """Whether a call may try the deployment now; past a cool-down, the first caller
        gets the probe and the others keep skipping it."""
        if self._next_probe is None:
            return True
        now = self._clock.now()
        if now < self._next_probe:
            return False
        self._next_probe = now + self._cooldown  # a probe that never reports lapses then
        self._probing = True
        return True

    def succeeded(self) -> None:
        was_open = self._opened_at is not None
        self.failures = 0
        self._opened_at = self._next_probe = None
        self._probing = False
        if was_open and self._changed is not None:
            self._changed(True)

    def failed(self) -> None:
        self.failures += 1
        self._probing = False
        if self._opened_at is None and self.failures < self._threshold:
            return
        opening = self._opened_at is None
        self._opened_at = self._clock.now()
        self._next_probe = self._opened_at + self._cooldown
        if opening and self._changed is not None:
            self._changed(False)


@dataclass(frozen=True, slots=True)
class State:
    """A deployment's health, as /metrics reports it."""

    model: str
    deployment: str
    provider: str
    state: str  # Breaker.state
    failures: int  # consecutive


class Health:
    """Every deployment's breaker in this process, by model id and deployment name."""

    def __init__(self, clock: Clock, *, failures: int, cooldown: timedelta) -> None:
        self._clock = clock
        self._failures = failures
        self._cooldown = cooldown
        self._breakers: dict[tuple[str, str], tuple[Deployment, Breaker]] = {}
        self._listeners: list[Listener] = []

    def breaker(self, model: Model, deployment: Deployment) -> Breaker:
        key = (model.id, deployment.name)
        found = self._breakers.get(key)
        if found is None:
            made = Breaker(
                self._clock,
                failures=self._failures,
                cooldown=self._cooldown,
                changed=functools.partial(self._changed, model.id, deployment.name),
            )
            found = self._breakers[key] = (deployment, made)
            self._tell(model.id, deployment.name, True)
        return found[1]

    def listen(self, listener: Listener) -> None:
        """Tell `listener` each deployment's state now, and each change from now on (in a
        multi-process server a gauge must be set where the state changes: every worker
        has breakers of its own, and /metrics is read from one of them)."""
        self._listeners.append(listener)
        for (model, name), (_deployment, breaker) in self._breakers.items():
            listener(model, name, up=breaker.state == "closed")

    def _changed(self, model: str, deployment: str, up: bool) -> None:
        labels = {"model": model, "deployment": deployment}
        if up:
            log.info("deployment recovered: it takes calls again", extra=labels)
        else:
            log.warning("deployment failing: skipped while it cools down", extra=labels)
        self._tell(model, deployment, up)

    def _tell(self, model: str, deployment: str, up: bool) -> None:
        for listener in self._listeners:
            listener(model, deployment, up=up)

    def states(self) -> list[State]:
        """Each deployment's state, in catalog order: what a /metrics gauge reads."""
        return [
            State(model, name, deployment.provider, breaker.state, breaker.failures)
            for (model, name), (deployment, breaker) in self._breakers.items()
        ]


@record
class Route:
    """A deployment ready to call: its provider and its breaker."""

    deployment: Deployment
    provider: Provider
    breaker: Breaker


@record
class Plan:
    """One call's routes, in the order to try them, and how many tries it may make."""

    model: Model
    routes: list[Route]
    attempts: int


@record
class Attempt:
    """One try of one deployment within a call, as its usage record lists it."""

    deployment: str
    provider: str
    outcome: str  # "ok", or the failure's usage status (upstream_error, timeout, ...)
    latency_ms: int  # until its answer, or its stream's first event, or its failure
    upstream_status: int | None = None  # an upstream_error's HTTP status

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deployment": self.deployment,
            "provider": self.provider,
            "outcome": self.outcome,
            "latency_ms": self.latency_ms,
        }
        if self.upstream_status is not None:
            out["upstream_status"] = self.upstream_status
        return out


@dataclass(slots=True)
class Attempts:
    """A call's attempts so far, in order; the last one answered, if any did."""

    planned: str  # the first planned deployment's provider, until an attempt is made
    made: list[Attempt] = field(default_factory=list)

    @property
    def provider(self) -> str:
        """The usage record's provider: the last attempt's."""
        return self.made[-1].provider if self.made else self.planned
