"""One metered call's timeline: when its steps began, and so, when it ends, its metrics (and,
with tracing on, its spans: traces/otlp.py's TracedWatch, a subclass).

The pipeline marks the steps (`step`) and then reports `settled` and `answered`, in either
order: a whole answer settles before it is sent, a stream is answered first and settles
when it ends. The call ends at the later of the two, or at its answer when it never
settles. Without tracing, marking a step records a time only for the two the metrics use
(the upstream call's start and its settlement's), so it costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import TYPE_CHECKING

from starlette.responses import Response, StreamingResponse

if TYPE_CHECKING:
    from bytespike.metrics.families import Metrics
    from bytespike.upstream.base import Usage
    from bytespike.upstream.deployments import Attempt

# The steps, in order; a call starts in ADMIT.
ADMIT, VALIDATE, HOLD, UPSTREAM, SETTLE = "admit", "validate", "hold", "upstream", "settle"


class Watch:
    __slots__ = (
        "_metrics",
        "_route",
        "_settled",
        "_settling",
        "_started",
        "_upstream",
        "_waiting",
        "model",
        "reason",
        "settlement",
        "status",
        "stream",
    )

    def __init__(self, metrics: Metrics, route: str) -> None:
        self.model = ""  # the catalog id, once the call is routed; never what a client sent
        self.status = 0  # the answer's HTTP status
        self.reason = ""  # why the call was refused, if it was (its error code)
        self.settlement = ""  # the usage record's status, once settled
        self.stream = False
        self._metrics = metrics
        self._route = route
        self._started = perf_counter()
        self._upstream = 0.0  # when the upstream call began (0.0: it never did)
        self._settling = 0.0  # when the settlement began
        self._settled = 0.0  # when it was written
        self._waiting = False  # answered, its stream still to settle

    def step(self, name: str) -> None:
        """The call moves on to step `name`."""
        if name == UPSTREAM:
            self._upstream = perf_counter()
        elif name == SETTLE:
            self._settling = perf_counter()

    def settled(
        self,
        status: str,
        usage: Usage | None,
        charged: int,
        *,
        stream: bool,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        """Its settlement is written: `charged` micro-dollars for `usage`, after `attempts`
        at the model's deployments."""
        self._settled = perf_counter()
        self.settlement, self.stream = status, stream
        self._metrics.settled(self.model, status, usage, charged)
        for attempt in attempts:
            self._metrics.upstream_attempted(self.model, attempt.deployment, attempt.outcome)
        if self._waiting:
            self._end(self._settled)

    def answered(self, response: Response) -> None:
        """Its answer is on its way. A refusal has its `reason` set by then; an answer of
        400 or more without one failed upstream: its reason is the settlement's status."""
        self.status = status = response.status_code
        if not self.reason and status >= 400:
            self.reason = self.settlement or "error"
        self._metrics.answered(self._route, self.model, status, self.reason)
        if self._upstream and not self._settled and isinstance(response, StreamingResponse):
            self._waiting = True  # it ends when the stream has settled
            return
        self._end(perf_counter())

    def _end(self, now: float) -> None:
        if self._upstream:
            upstream = (self._settling or now) - self._upstream
            added = now - self._started - upstream
            self._metrics.timed(self._route, self.model, self.stream, added, upstream)
