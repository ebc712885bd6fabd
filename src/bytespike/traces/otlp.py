"""OpenTelemetry's side of traces, imported only when tracing is on (traces/__init__.py): a
server span per HTTP request (`Spans`, an ASGI middleware that continues the caller's trace
from its W3C `traceparent`), and under it a span per metered call with a child per step
(admit, validate, hold, upstream, settle). The call's spans are made when it ends, from its
Watch's marks, with the times the steps began: the steps themselves run untouched."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytespike import __version__, traces
from bytespike.metrics.families import Metrics
from bytespike.metrics.watch import ADMIT, Watch
from bytespike.upstream.base import Usage
from bytespike.upstream.deployments import Attempt

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"  # OTLP/HTTP's, added to a base URL


class Tracing:
    """The server's tracer and its exporter; `close` sends what is left."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("bytespike", __version__)

    @classmethod
    def start(cls, endpoint: str | None) -> Tracing:
        """Spans batched to `endpoint` (a collector's base URL), else to where
        OpenTelemetry's own variables say."""
        attributes: dict[str, Any] = {"service.version": __version__}
        named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        if not named:
            attributes["service.name"] = "bytespike"
        provider = TracerProvider(resource=Resource.create(attributes))
        url = endpoint.rstrip("/") + TRACES_PATH if endpoint else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        return cls(provider)

    def install(self, app: Starlette) -> None:
        """The per-request span, as `app`'s outermost middleware so far."""
        app.add_middleware(Spans, tracing=self)

    def watch(self, metrics: Metrics, route: str, request: Request) -> Watch:
        return TracedWatch(metrics, route, self.tracer, request)

    async def close(self) -> None:
        """Export what is still queued, then stop; off the event loop, as it may wait."""
        await asyncio.to_thread(self.provider.shutdown)


class TracedWatch(Watch):
    """A Watch that also leaves the call's spans when it ends."""

    __slots__ = ("_charged", "_epoch", "_marks", "_parent", "_request_id", "_tracer", "_usage")

    def __init__(
        self, metrics: Metrics, route: str, tracer: trace.Tracer, request: Request
    ) -> None:
        super().__init__(metrics, route)
        self._tracer = tracer
        self._parent = otel_context.get_current()  # the request's span (Spans)
        self._epoch = time.time_ns() - int(self._started * 1e9)  # perf_counter → epoch ns
        self._marks: list[tuple[str, float]] = [(ADMIT, self._started)]
        self._request_id: str | None = request.scope.get("state", {}).get("request_id")
        self._usage: Usage | None = None
        self._charged = 0

    def step(self, name: str) -> None:
        super().step(name)
        self._marks.append((name, perf_counter()))

    def settled(
        self,
        status: str,
        usage: Usage | None,
        charged: int,
        *,
        stream: bool,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        self._usage, self._charged = usage, charged
        super().settled(status, usage, charged, stream=stream, attempts=attempts)

    def _end(self, now: float) -> None:
        super()._end(now)
        try:
            self._spans(now)
        except Exception:  # a call is never failed by its trace
            log.warning("a call's spans were not recorded", exc_info=True)

    def _spans(self, now: float) -> None:
        call = self._tracer.start_span(
            "metered call",
            context=self._parent,
            start_time=self._ns(self._started),
            attributes=self._attributes(),
        )
        inside = trace.set_span_in_context(call)
        marks = self._marks
        for i, (name, began) in enumerate(marks):
            until = marks[i + 1][1] if i + 1 < len(marks) else (self._settled or now)
            step = self._tracer.start_span(name, context=inside, start_time=self._ns(began))
            step.end(end_time=self._ns(until))
        if self.status >= 500:
            call.set_status(Status(StatusCode.ERROR))
        call.end(end_time=self._ns(now))

    def _ns(self, moment: float) -> int:
        return self._epoch + int(moment * 1e9)

    def _attributes(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "http.route": self._route,
            "http.response.status_code": self.status,
            "bytespike.stream": self.stream,
        }
        if self.model:
            found["gen_ai.request.model"] = self.model
        if self._request_id:
            found["bytespike.request_id"] = self._request_id
        if self.reason:
            found["bytespike.refusal"] = self.reason
        if self.settlement:
            found["bytespike.settlement"] = self.settlement
            found["bytespike.charged_microdollars"] = self._charged
        if self._usage is not None:
            found["gen_ai.usage.input_tokens"] = self._usage.input_tokens
            found["gen_ai.usage.output_tokens"] = self._usage.output_tokens
        return found


class Spans:
    """ASGI middleware: a server span around each HTTP request, in the caller's trace when
    it sent a `traceparent`; the trace id is set for the request's log lines (logs.py)."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracer = tracing.tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        attributes = {"http.request.method": method, "url.path": scope["path"]}
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            attributes["bytespike.request_id"] = request_id
        span = self.tracer.start_span(
            method, context=propagate.extract(headers), kind=SpanKind.SERVER, attributes=attributes
        )
        status = 500

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        named = traces.current_trace.set(trace.format_trace_id(span.get_span_context().trace_id))
        try:
            with trace.use_span(span, end_on_exit=False):
                await self.app(scope, receive, noted)
        finally:
            traces.current_trace.reset(named)
            route = scope.get("route")
            if route is not None:  # named after the route's template, never the raw path
                span.update_name(f"{method} {route.path}")
                span.set_attribute("http.route", route.path)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
