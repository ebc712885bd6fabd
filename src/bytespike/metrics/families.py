"""The metric families of one server, and the labelled children its request path bumps.

Counters and histograms live in the process. With `serve --workers N`, every worker writes
them to files in PROMETHEUS_MULTIPROC_DIR (a directory `serve` makes and removes,
cli/serve.py) and a scrape of any worker sums them all: prometheus_client's multiprocess
mode, chosen by that variable before the library is first imported. What the database
knows (pending holds, the outbox) is not kept here: exposition.py reads it at scrape time.

Cheap by construction, since the metered path is measured: a labelled child is made once
per combination of label values and kept in a dict keyed by their tuple, so recording is a
dict lookup and an increment, without prometheus_client's label checks. Label values are
bounded: a route is a route's template, a model a catalog id (never what a client sent),
a status or reason one of the gateway's own.

Failure policy: recording has nothing to fail on (arithmetic in memory, or in a
memory-mapped file with workers); what can fail, the database, is read at scrape time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as multiprocess_mode
from prometheus_client.metrics import MetricWrapperBase

from bytespike.metrics.watch import Watch

if TYPE_CHECKING:
    from starlette.requests import Request

    from bytespike.traces.otlp import Tracing
    from bytespike.upstream.base import Usage

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNROUTED = "unrouted"  # a call that reached the pipeline without a route (a test's request)

# Seconds. The gateway's own share of a call is budgeted at a millisecond.
ADDED_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # up to db/batch.py's MAX_BATCH


class Metrics:
    """Every family a server records. `watch(request)` starts a metered call's Watch, traced
    when `tracing` is set; the other methods are what the rest of the server records."""

    def __init__(self, *, multiprocess_dir: str | None = None, tracing: Tracing | None = None):
        self.multiprocess_dir = multiprocess_dir
        self.tracing = tracing
        # In multiprocess mode the values live in the directory's files, and a scrape
        # reads those (exposition), so the families are registered nowhere.
        self._registry = None if multiprocess_dir else CollectorRegistry()
        r = self._registry
        self.requests = Counter(
            "bytespike_requests",
            "Metered calls answered, by route, model (empty until the call named a catalog "
            "model), HTTP status and refusal reason (empty when not refused).",
            ("route", "model", "status", "reason"),
            registry=r,
        )
        self.added_latency = Histogram(
            "bytespike_added_latency_seconds",
            "The gateway's own time in a call that reached the upstream: from arrival to "
            "settlement, less the upstream call.",
            ("route",),
            buckets=ADDED_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "bytespike_upstream_latency_seconds",
            "The upstream call: from sending it to its whole answer (a stream: its last event).",
            ("model", "stream"),
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "bytespike_settled_tokens",
            "Tokens settled (billed), by model and kind (input, which includes cached input; "
            "output).",
            ("model", "kind"),
            registry=r,
        )
        self.micros = Counter(
            "bytespike_settled_microdollars",
            "Money charged at settlement, in micro-dollars, by model.",
            ("model",),
            registry=r,
        )
        self.settlements = Counter(
            "bytespike_settlements",
            "Calls settled, by model and usage-record status (ok, client_closed, "
            "upstream_error, timeout, unavailable, malformed).",
            ("model", "status"),
            registry=r,
        )
        self.webhook_attempts = Counter(
            "bytespike_webhook_attempts",
            "Webhook delivery attempts by outcome: succeeded, retrying (failed, tried again "
            "later) or failed (failed, no attempt left).",
            ("outcome",),
            registry=r,
        )
        self.batch_size = Histogram(
            "bytespike_group_commit_batch_size",
            "Write operations committed together in one group-commit transaction.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.deployment_up = Gauge(
            "bytespike_deployment_up",
            "1 while a model's deployment takes calls, 0 while it cools down after failures "
            "(with several workers: 0 if any live worker has it cooling down).",
            ("model", "deployment"),
            registry=r,
            multiprocess_mode="livemin",
        )
        self.upstream_attempts = Counter(
            "bytespike_upstream_attempts",
            "Upstream attempts by model, deployment and outcome (ok, or the failure).",
            ("model", "deployment", "outcome"),
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def build(cls, tracing: Tracing | None = None) -> Metrics:
        """Metrics in this process's mode: multiprocess when PROMETHEUS_MULTIPROC_DIR is set.
        Without the `_created` series (a switch of the library's, process-wide), which
        multiprocess mode lacks anyway: a scrape reads the same with one worker or several."""
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        return cls(multiprocess_dir=os.environ.get(MULTIPROCESS_DIR) or None, tracing=tracing)

    def watch(self, request: Request) -> Watch:
        """The timeline of a metered call that starts now."""
        route = request.scope.get("route")
        path = route.path if route is not None else UNROUTED
        if self.tracing is None:
            return Watch(self, path)
        return self.tracing.watch(self, path, request)

    def _child(self, key: tuple[Any, ...]) -> Any:
        """The child of family `key[0]` labelled `key[1:]`: one tuple, one dict lookup."""
        child = self._children.get(key)
        if child is None:
            family: MetricWrapperBase = key[0]
            child = self._children[key] = family.labels(*key[1:])
        return child

    def answered(self, route: str, model: str, status: int, reason: str) -> None:
        self._child((self.requests, route, model, status, reason)).inc()

    def timed(self, route: str, model: str, stream: bool, added: float, upstream: float) -> None:
        """A call that reached the upstream: the gateway's time and the upstream's."""
        self._child((self.added_latency, route)).observe(added)
        self._child((self.upstream_latency, model, "true" if stream else "false")).observe(upstream)

    def settled(self, model: str, status: str, usage: Usage | None, charged: int) -> None:
        self._child((self.settlements, model, status)).inc()
        if usage is not None:
            self._child((self.tokens, model, "input")).inc(usage.input_tokens)
            self._child((self.tokens, model, "output")).inc(usage.output_tokens)
        if charged:
            self._child((self.micros, model)).inc(charged)

    def batched(self, size: int) -> None:
        """A group-commit batch of `size` operations committed (db/batch.py)."""
        self.batch_size.observe(size)

    def webhook_attempted(self, outcome: str) -> None:
        self._child((self.webhook_attempts, outcome)).inc()

    def deployment_state(self, model: str, deployment: str, *, up: bool) -> None:
        """Where a deployment's circuit breaker records its state: call it on every change
        (and once per deployment at start, so a healthy one shows as 1)."""
        self._child((self.deployment_up, model, deployment)).set(1 if up else 0)

    def upstream_attempted(self, model: str, deployment: str, outcome: str) -> None:
        """One attempt at one deployment; `outcome`: "ok" or a bounded failure kind."""
        self._child((self.upstream_attempts, model, deployment, outcome)).inc()

    def exposition(self) -> bytes:
        """This server's families in Prometheus' text format (every worker's, summed)."""
        registry = self._registry
        if registry is None:
            registry = CollectorRegistry()
            # prometheus_client leaves these two untyped.
            multiprocess_mode.MultiProcessCollector(registry, self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """A worker stopping: its live gauges leave the sums (its counters stay)."""
        if self.multiprocess_dir is not None:
            multiprocess_mode.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]
