"""The request path's metrics, tallied in plain dicts in one process, read by a scrape exactly
as prometheus_client's own counters and histograms would be."""

from __future__ import annotations

import prometheus_client
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from bytespike.metrics import families
from bytespike.metrics.families import HOT, Family, Metrics
from bytespike.upstream.base import Usage


def _native(registry: CollectorRegistry) -> dict[Family, MetricWrapperBase]:
    made: dict[Family, MetricWrapperBase] = {}
    for family in HOT:
        if family.buckets is None:
            made[family] = Counter(
                family.name, family.documentation, family.labels, registry=registry
            )
        else:
            made[family] = Histogram(
                family.name,
                family.documentation,
                family.labels,
                buckets=family.buckets,
                registry=registry,
            )
    return made


def _hot_text(text: str) -> str:
    """The scrape's lines of the request path's families (others are not tallied)."""
    names = tuple(f.name for f in HOT)
    return "\n".join(line for line in text.splitlines() if any(name in line for name in names))


_seconds = st.floats(min_value=0, max_value=700, allow_nan=False)
_models = st.sampled_from(["", "gpt-5-4", "claude-sonnet-4-6"])
_calls = st.lists(
    st.tuples(
        st.sampled_from(["/v1/chat/completions", "/v1/messages"]),
        _models,
        st.sampled_from([200, 402, 429, 502]),
        st.sampled_from(["", "insufficient_balance", "rate_limited"]),
        st.booleans(),
        _seconds,
        _seconds,
        st.integers(min_value=0, max_value=10**6),
        st.integers(min_value=0, max_value=300),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(calls=_calls, exact=st.sampled_from([0.00025, 0.001, 1.0, 300.0, 600.0]))
def test_a_scrape_reads_the_tallies_as_prometheus_clients_own_families(calls, exact):
    """Every sample, label order, bucket bound (a value exactly on a bound included) and
    number format: the same text as prometheus_client's Counter and Histogram give."""
    prometheus_client.disable_created_metrics()  # as Metrics.build does
    metrics = Metrics()
    registry = CollectorRegistry()
    native = _native(registry)

    def add(family: Family, labels: tuple[object, ...], amount: float) -> None:
        made = native[family]
        (made.labels(*labels) if labels else made).inc(amount)  # type: ignore[attr-defined]

    def observe(family: Family, labels: tuple[object, ...], value: float) -> None:
        made = native[family]
        (made.labels(*labels) if labels else made).observe(value)  # type: ignore[attr-defined]

    for route, model, status, reason, stream, added, upstream, charged, size in calls:
        metrics.answered(route, model, status, reason)
        add(families.REQUESTS, (route, model, status, reason), 1)
        metrics.timed(route, model, stream, added, exact if stream else upstream)
        observe(families.ADDED_LATENCY, (route,), added)
        streamed = "true" if stream else "false"
        observe(families.UPSTREAM_LATENCY, (model, streamed), exact if stream else upstream)
        usage = Usage(size, size // 2) if status == 200 else None
        metrics.settled(model, "ok" if usage else "upstream_error", usage, charged)
        add(families.SETTLEMENTS, (model, "ok" if usage else "upstream_error"), 1)
        if usage is not None:
            add(families.TOKENS, (model, "input"), usage.input_tokens)
            add(families.TOKENS, (model, "output"), usage.output_tokens)
        if charged:
            add(families.MICROS, (model,), charged)
        metrics.upstream_attempted(model, "primary", "ok")
        add(families.UPSTREAM_ATTEMPTS, (model, "primary", "ok"), 1)
        metrics.batched(size % 257)
        observe(families.BATCH_SIZE, (), size % 257)

    expected = _hot_text(generate_latest(registry).decode())
    assert _hot_text(metrics.exposition().decode()) == expected
