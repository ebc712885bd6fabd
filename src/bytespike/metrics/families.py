"""The metric families of one server, and the labelled children its request path bumps.

Counters and histograms live in the process. With `serve --workers N`, every worker writes
them to files in PROMETHEUS_MULTIPROC_DIR (a directory `serve` makes and removes,
cli/serve.py) and a scrape of any worker sums them all: prometheus_client's multiprocess
mode, chosen by that variable before the library is first imported. What the database
knows (pending holds, the outbox) is not kept here: exposition.py reads it at scrape time.

Cheap by construction, since the metered path is measured (about a dozen records a call).
In one process, the request path's families are tallies in plain dicts keyed by their
label values (`_Tallies`), which a scrape turns into families through a collector: an
increment is a dict update, without prometheus_client's label checks, lock and, for a
histogram, its Python loop over the buckets. With workers they must be in the shared files,
so they are prometheus_client's own children (`_Children`), each made once per combination
of label values and kept in a dict keyed by their tuple. Either way a scrape reads the
same. Label values are bounded: a route is a route's template, a model a catalog id (never
what a client sent), a status or reason one of the gateway's own.

Failure policy: recording has nothing to fail on (arithmetic in memory, or in a
memory-mapped file with workers); what can fail, the database, is read at scrape time.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as multiprocess_mode
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


@dataclass(frozen=True, slots=True, eq=False)
class Family:
    """A counter, or a histogram with `buckets` (its upper bounds; +Inf is added)."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None = None


# The families the request path records, in a scrape's order.
REQUESTS = Family(
    "bytespike_requests",
    "Metered calls answered, by route, model (empty until the call named a catalog model), "
    "HTTP status and refusal reason (empty when not refused).",
    ("route", "model", "status", "reason"),
)
ADDED_LATENCY = Family(
    "bytespike_added_latency_seconds",
    "The gateway's own time in a call that reached the upstream: from arrival to "
    "settlement, less the upstream call.",
    ("route",),
    ADDED_BUCKETS,
)
UPSTREAM_LATENCY = Family(
    "bytespike_upstream_latency_seconds",
    "The upstream call: from sending it to its whole answer (a stream: its last event).",
    ("model", "stream"),
    UPSTREAM_BUCKETS,
)
TOKENS = Family(
    "bytespike_settled_tokens",
    "Tokens settled (billed), by model and kind (input, which includes cached input; output).",
    ("model", "kind"),
)
MICROS = Family(
    "bytespike_settled_microdollars",
    "Money charged at settlement, in micro-dollars, by model.",
    ("model",),
)
SETTLEMENTS = Family(
    "bytespike_settlements",
    "Calls settled, by model and usage-record status (ok, client_closed, upstream_error, "
    "timeout, unavailable, malformed).",
    ("model", "status"),
)
BATCH_SIZE = Family(
    "bytespike_group_commit_batch_size",
    "Write operations committed together in one group-commit transaction.",
    (),
    BATCH_BUCKETS,
)
UPSTREAM_ATTEMPTS = Family(
    "bytespike_upstream_attempts",
    "Upstream attempts by model, deployment and outcome (ok, or the failure).",
    ("model", "deployment", "outcome"),
)
HOT = (
    REQUESTS,
    ADDED_LATENCY,
    UPSTREAM_LATENCY,
    TOKENS,
    MICROS,
    SETTLEMENTS,
    BATCH_SIZE,
    UPSTREAM_ATTEMPTS,
)


class _Children:
    """Recording through prometheus_client's children (multiprocess mode: its files)."""

    def __init__(self) -> None:
        self._families: dict[Family, MetricWrapperBase] = {}
        for family in HOT:
            # Registered nowhere: a scrape reads the files (Metrics.exposition).
            if family.buckets is None:
                made: MetricWrapperBase = Counter(
                    family.name, family.documentation, family.labels, registry=None
                )
            else:
                made = Histogram(
                    family.name,
                    family.documentation,
                    family.labels,
                    buckets=family.buckets,
                    registry=None,
                )
            self._families[family] = made
        self._children = _Labelled()

    def add(self, family: Family, key: tuple[Any, ...], amount: float) -> None:
        self._children.child(self._families[family], key).inc(amount)

    def observe(self, family: Family, key: tuple[Any, ...], value: float) -> None:
        self._children.child(self._families[family], key).observe(value)


class _Labelled:
    """prometheus_client's labelled children, each made once per metric and label values
    and then found with one dict lookup, without the library's label checks."""

    def __init__(self) -> None:
        self._made: dict[tuple[MetricWrapperBase, tuple[Any, ...]], Any] = {}

    def child(self, metric: MetricWrapperBase, labels: tuple[Any, ...]) -> Any:
        child = self._made.get((metric, labels))
        if child is None:
            child = self._made[metric, labels] = metric.labels(*labels) if labels else metric
        return child


class _Tallies(Collector):
    """Recording in plain dicts (one process), read by a scrape as prometheus_client's own
    families would be: the same names, samples, label order and bucket bounds."""

    def __init__(self) -> None:
        self._counts: dict[Family, dict[tuple[Any, ...], float]] = {}
        # A histogram's series: its count per bucket (the last: above every bound), then
        # the sum of what it observed.
        self._series: dict[Family, dict[tuple[Any, ...], list[float]]] = {}
        for family in HOT:
            if family.buckets is None:
                self._counts[family] = {}
            else:
                series = self._series[family] = {}
                if not family.labels:  # shown from the start, as prometheus_client does
                    series[()] = [0.0] * (len(family.buckets) + 2)

    def add(self, family: Family, key: tuple[Any, ...], amount: float) -> None:
        counts = self._counts[family]
        counts[key] = counts.get(key, 0) + amount

    def observe(self, family: Family, key: tuple[Any, ...], value: float) -> None:
        series = self._series[family]
        tally = series.get(key)
        if tally is None:
            tally = series[key] = [0.0] * (len(family.buckets or ()) + 2)
        tally[bisect_left(family.buckets or (), value)] += 1  # the first bound ≥ value
        tally[-1] += value

    def collect(self) -> Iterable[Metric]:
        for family in HOT:
            if family.buckets is None:
                counter = CounterMetricFamily(
                    family.name, family.documentation, labels=family.labels
                )
                for key, total in self._counts[family].items():
                    counter.add_metric([str(v) for v in key], float(total))
                yield counter
                continue
            histogram = HistogramMetricFamily(
                family.name, family.documentation, labels=family.labels
            )
            # As prometheus_client writes its own bounds ("+Inf" for the last).
            bounds = [floatToGoString(b) for b in (*family.buckets, float("inf"))]  # type: ignore[no-untyped-call]
            for key, tally in self._series[family].items():
                cumulative, buckets = 0.0, []
                for bound, count in zip(bounds, tally, strict=False):
                    cumulative += count
                    buckets.append((bound, cumulative))
                histogram.add_metric([str(v) for v in key], buckets, tally[-1])
            yield histogram


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
        self._record: _Children | _Tallies
        if r is None:
            self._record = _Children()
        else:
            self._record = tallies = _Tallies()
            r.register(tallies)
        self.webhook_attempts = Counter(
            "bytespike_webhook_attempts",
            "Webhook delivery attempts by outcome: succeeded, retrying (failed, tried again "
            "later) or failed (failed, no attempt left).",
            ("outcome",),
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
        self._children = _Labelled()  # the families off the request path's children

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

    def answered(self, route: str, model: str, status: int, reason: str) -> None:
        self._record.add(REQUESTS, (route, model, status, reason), 1)

    def timed(self, route: str, model: str, stream: bool, added: float, upstream: float) -> None:
        """A call that reached the upstream: the gateway's time and the upstream's."""
        self._record.observe(ADDED_LATENCY, (route,), added)
        self._record.observe(UPSTREAM_LATENCY, (model, "true" if stream else "false"), upstream)

    def settled(self, model: str, status: str, usage: Usage | None, charged: int) -> None:
        record = self._record
        record.add(SETTLEMENTS, (model, status), 1)
        if usage is not None:
            record.add(TOKENS, (model, "input"), usage.input_tokens)
            record.add(TOKENS, (model, "output"), usage.output_tokens)
        if charged:
            record.add(MICROS, (model,), charged)

    def batched(self, size: int) -> None:
        """`size` operations committed together, in one transaction (db/batch.py: a batch, or
        on PostgreSQL one of its runs of fused statements, or the rest of it)."""
        self._record.observe(BATCH_SIZE, (), size)

    def webhook_attempted(self, outcome: str) -> None:
        self._children.child(self.webhook_attempts, (outcome,)).inc()

    def deployment_state(self, model: str, deployment: str, *, up: bool) -> None:
        """Where a deployment's circuit breaker records its state: call it on every change
        (and once per deployment at start, so a healthy one shows as 1)."""
        self._children.child(self.deployment_up, (model, deployment)).set(1 if up else 0)

    def upstream_attempted(self, model: str, deployment: str, outcome: str) -> None:
        """One attempt at one deployment; `outcome`: "ok" or a bounded failure kind."""
        self._record.add(UPSTREAM_ATTEMPTS, (model, deployment, outcome), 1)

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
