"""GET /metrics: the server's families (every worker's, summed) in Prometheus' text format,
and three gauges read from the database when scraped: pending holds, the money they hold,
and the webhook outbox's depth. Those are two counts over rows in flight, each through a
partial or leading index, so a scrape costs the same however long the history; nothing of
this is read on the request path.

With BYTESPIKE_METRICS_TOKEN set, a scrape must carry `Authorization: Bearer <token>`;
unset, the endpoint is open like /healthz (it shows totals by model, no account or key).

Failure policy: a database that does not answer leaves its gauges out of that scrape (and
is logged); the process's own families are served all the same, so one outage does not
blank every graph.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from bytespike.api import auth, errors
from bytespike.billing import holds
from bytespike.context import Context
from bytespike.metrics.families import Metrics
from bytespike.webhooks import outbox

log = logging.getLogger(__name__)


async def endpoint(request: Request) -> Response:
    """The scrape: 401 without the token when one is set."""
    ctx: Context = request.app.state.ctx
    metrics: Metrics = request.app.state.metrics
    token = ctx.settings.metrics_token
    if token is not None and not auth.bearer_matches(request, token):
        headers = {"WWW-Authenticate": "Bearer"}
        return errors.envelope(401, "authentication_error", "invalid metrics token", headers)
    body = metrics.exposition() + await _database(ctx)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _database(ctx: Context) -> bytes:
    try:
        async with ctx.db.read() as conn:
            pending, held = await holds.pending_totals(conn)
            depth = await outbox.depth(conn)
    except Exception:
        log.warning("metrics: the database gauges were not read", exc_info=True)
        return b""
    registry = CollectorRegistry()
    registry.register(_Snapshot(pending=pending, held=held, depth=depth))
    return generate_latest(registry)


class _Snapshot(Collector):
    def __init__(self, *, pending: int, held: int, depth: int) -> None:
        self.gauges = [
            GaugeMetricFamily(
                "bytespike_pending_holds", "Holds placed and not yet settled.", value=pending
            ),
            GaugeMetricFamily(
                "bytespike_held_microdollars",
                "Money in pending holds, in micro-dollars.",
                value=held,
            ),
            GaugeMetricFamily(
                "bytespike_webhook_outbox_depth",
                "Webhook deliveries not yet done (due, or waiting for a retry).",
                value=depth,
            ),
        ]

    def collect(self) -> Iterable[Metric]:
        return self.gauges
