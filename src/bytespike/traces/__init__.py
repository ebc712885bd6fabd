"""Traces: off unless an OTLP endpoint is configured, and then exported over OTLP/HTTP by
OpenTelemetry's SDK (the optional `otel` extra), in traces/otlp.py.

On: OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OpenTelemetry's
own variables, with the rest of them: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_BSP_*...) or BYTESPIKE_OTLP_ENDPOINT is set, and neither OTEL_SDK_DISABLED=true nor
OTEL_TRACES_EXPORTER=none says otherwise. Off, nothing of OpenTelemetry is imported and
nothing on the request path so much as checks for it: the middleware is not installed and
each metered call gets a plain metrics Watch.

Failure policy: configured without the extra installed, the process does not start (one
error line). A collector that is down loses spans, never calls: the SDK exports from its
own thread and drops what it cannot send.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bytespike.settings import Settings
    from bytespike.traces.otlp import Tracing

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_MISSING = (
    "traces are configured (an OTLP endpoint is set) but OpenTelemetry is not installed: "
    "pip install 'bytespike[otel]', or unset the endpoint"
)
# The trace id of the request being served, for its log lines (logs.py); set by the
# middleware (otlp.Spans), so only while tracing is on.
current_trace: ContextVar[str | None] = ContextVar("bytespike_trace_id", default=None)


class TracingUnavailable(Exception):
    """Traces are configured but OpenTelemetry's SDK is not installed."""


def current_id() -> str | None:
    """The trace id (32 hex digits) of the request being served; None outside one, or off."""
    return current_trace.get()


def configured(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return settings.otlp_endpoint is not None or any(env.get(name) for name in _ENDPOINTS)


def check(settings: Settings) -> None:
    """At start-up: TracingUnavailable if traces are configured and cannot be exported."""
    if configured(settings):
        _sdk()


def build(settings: Settings, env: Mapping[str, str] | None = None) -> Tracing | None:
    """The server's tracing, or None when it is off."""
    if not configured(settings, env):
        return None
    return _sdk().start(settings.otlp_endpoint)


def _sdk() -> type[Tracing]:
    try:
        from bytespike.traces.otlp import Tracing as loaded
    except ImportError:
        raise TracingUnavailable(_MISSING) from None
    return loaded
