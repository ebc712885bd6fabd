"""Deployments at run time: the order a call tries them in (priority, then weight), which
failures move a call on, and the circuit breaker's cool-down and probe."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from bytespike import catalog
from bytespike.catalog import Deployment
from bytespike.upstream.base import (
    UpstreamError,
    UpstreamFailure,
    UpstreamMalformed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from bytespike.upstream.deployments import Breaker, Health, order, retryable
from tests.conftest import FakeClock


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - repeatable draws, not a secret


def deployed(name: str, *, weight: int = 1, priority: int = 1) -> Deployment:
    return Deployment(name, "openai", "gpt", weight=weight, priority=priority)


def test_lower_priorities_come_first_and_each_deployment_once():
    listed = [
        deployed("backup", priority=2),
        deployed("a", weight=5),
        deployed("last-resort", priority=9),
        deployed("b", weight=1),
    ]
    rng = seeded(1)
    for _ in range(50):
        names = [d.name for d in order(listed, rng)]
        assert sorted(names[:2]) == ["a", "b"]
        assert names[2:] == ["backup", "last-resort"]


def test_equals_are_drawn_by_weight_and_so_are_their_fallbacks():
    listed = [deployed("light", weight=1), deployed("heavy", weight=3)]
    rng = seeded(7)
    firsts = Counter(order(listed, rng)[0].name for _ in range(4000))
    assert 2800 < firsts["heavy"] < 3200  # 3 in 4 (seeded: the same every run)
    assert firsts["light"] + firsts["heavy"] == 4000


def test_one_deployment_draws_nothing():
    rng = seeded(3)
    state = rng.getstate()
    assert order([deployed("only")], rng) == [deployed("only")]
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("failure", "moves_on"),
    [
        (UpstreamUnavailable("connection refused"), True),
        (UpstreamTimeout("too slow"), True),
        (UpstreamError(429, "slow down"), True),
        (UpstreamError(500, "oops"), True),
        (UpstreamError(503, "overloaded"), True),
        (UpstreamError(529, "overloaded"), True),
        (UpstreamError(400, "bad field"), False),
        (UpstreamError(401, "bad key"), False),
        (UpstreamError(404, "no such model"), False),
        (UpstreamMalformed("not JSON"), False),
    ],
)
def test_which_failures_move_a_call_to_the_next_deployment(
    failure: UpstreamFailure, moves_on: bool
) -> None:
    assert retryable(failure) is moves_on


def make_breaker(clock: FakeClock) -> Breaker:
    return Breaker(clock, failures=3, cooldown=timedelta(seconds=30))


def test_the_breaker_opens_after_consecutive_failures_only(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # a success in between starts the count again
    breaker.failed()
    breaker.failed()
    assert (breaker.state, breaker.claim()) == ("closed", True)
    breaker.failed()
    assert (breaker.state, breaker.failures, breaker.claim()) == ("open", 3, False)


def test_after_its_cool_down_one_probe_goes_through_and_its_success_closes_it(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.failed()
    clock.advance(seconds=29)
    assert not breaker.claim()
    clock.advance(seconds=1)
    assert breaker.claim()  # the probe
    assert breaker.state == "half_open"
    assert not breaker.claim()  # only one
    breaker.succeeded()
    assert (breaker.state, breaker.failures, breaker.claim()) == ("closed", 0, True)


def test_a_failed_probe_opens_it_for_another_cool_down(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.failed()
    clock.advance(seconds=30)
    assert breaker.claim()
    breaker.failed()
    assert (breaker.state, breaker.claim()) == ("open", False)
    clock.advance(seconds=29)
    assert not breaker.claim()
    clock.advance(seconds=1)
    assert breaker.claim()


def test_a_probe_that_never_reports_lapses_after_a_cool_down(clock: FakeClock) -> None:
    """A probe whose client left mid-call reports nothing: the next one goes a cool-down
    later, rather than never."""
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.failed()
    clock.advance(seconds=30)
    assert breaker.claim()
    clock.advance(seconds=29)
    assert not breaker.claim()
    clock.advance(seconds=1)
    assert breaker.claim()


def test_health_tells_a_listener_each_deployments_state_and_every_change(clock: FakeClock):
    """What a /metrics gauge is set from: 1 while a deployment takes calls, 0 while it cools
    down, told where it changes (each worker has breakers of its own)."""
    model = catalog.load().get("mock")
    assert model is not None
    health = Health(clock, failures=1, cooldown=timedelta(seconds=30))
    breaker = health.breaker(model, model.deployments[0])
    told: list[tuple[str, str, bool]] = []
    health.listen(lambda m, d, *, up: told.append((m, d, up)))
    assert told == [("mock", "mock", True)]
    breaker.failed()
    breaker.failed()  # still open: no change
    clock.advance(seconds=30)
    assert breaker.claim()
    breaker.succeeded()
    assert told == [("mock", "mock", True), ("mock", "mock", False), ("mock", "mock", True)]
    assert [(s.deployment, s.state, s.failures) for s in health.states()] == [("mock", "closed", 0)]
