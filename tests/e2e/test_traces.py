"""Traces, exported over OTLP/HTTP to a collector stand-in on loopback (it decodes the
protobuf the real exporter sends): a server span per request, in the caller's trace when it
sent a `traceparent`; under it a span per metered call with a child per step, in order and
inside it; and the request's id and trace id on every line it logged."""

from __future__ import annotations

import gzip
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from bytespike.billing import ledger
from bytespike.settings import Settings
from bytespike.traces import configured
from tests.e2e.gateway_support import gateway
from tests.metrics_support import CHAT

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the caller's trace, as W3C's example has it
PARENT = "00f067aa0ba902b7"
STEPS = ["admit", "validate", "hold", "upstream", "settle"]
BODY = {"model": "mock", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Collector:
    """What an OpenTelemetry collector would receive on /v1/traces: decoded spans, with
    their resource's attributes."""

    url: str = ""
    spans: list[Span] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for resource_spans in request.resource_spans:
                self.resources.append(attributes(resource_spans.resource.attributes))
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)


def attributes(pairs: Any) -> dict[str, Any]:
    found = {}
    for pair in pairs:
        value = pair.value
        found[pair.key] = getattr(value, value.WhichOneof("value"))
    return found


@contextmanager
def collecting() -> Iterator[Collector]:
    """The stand-in, on its own thread: the exporter posts from a thread of its own and
    blocks on the answer, so it must not wait on the test's event loop."""
    collector = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            ok = self.path == "/v1/traces" and "protobuf" in self.headers["Content-Type"]
            if ok:
                collector.receive(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hex_id(raw: bytes) -> str:
    return raw.hex()


async def test_a_metered_call_is_traced_step_by_step_and_its_log_lines_carry_the_ids(
    ctx, fakes, account, log_lines
):
    key, wallet = account
    with collecting() as collector:
        ctx.settings.otlp_endpoint = collector.url
        async with gateway(ctx, fakes) as base, httpx.AsyncClient(base_url=base) as client:
            auth = {"Authorization": f"Bearer {key}"}
            traced = {**auth, "traceparent": f"00-{TRACE}-{PARENT}-01"}
            answer = await client.post(CHAT, json=BODY, headers=traced)
            streamed = await client.post(CHAT, json={**BODY, "stream": True}, headers=auth)
        # The gateway has stopped: what its exporter still held was sent on the way out.
    assert (answer.status_code, streamed.status_code) == (200, 200)
    request_id = answer.headers["x-request-id"]
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet) == []

    assert collector.resources and all(
        r["service.name"] == "bytespike" for r in collector.resources
    )
    spans = collector.spans
    [server] = [s for s in spans if hex_id(s.trace_id) == TRACE and s.kind == Span.SPAN_KIND_SERVER]
    assert server.name == "POST /v1/chat/completions"
    assert hex_id(server.parent_span_id) == PARENT  # continues the caller's trace
    assert attributes(server.attributes)["http.response.status_code"] == 200
    assert attributes(server.attributes)["bytespike.request_id"] == request_id

    [call] = [s for s in spans if s.parent_span_id == server.span_id]
    assert call.name == "metered call"
    facts = attributes(call.attributes)
    assert facts["gen_ai.request.model"] == "mock"
    assert facts["bytespike.request_id"] == request_id
    assert facts["bytespike.settlement"] == "ok"
    usage = answer.json()["usage"]
    assert facts["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert facts["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert facts["bytespike.charged_microdollars"] > 0
    assert_steps(spans, call)

    # The stream: its own trace, and a call span that ends once the stream has settled.
    [streamed_call] = [s for s in spans if s.name == "metered call" and s is not call]
    assert hex_id(streamed_call.trace_id) != TRACE
    assert attributes(streamed_call.attributes)["bytespike.stream"] is True
    assert_steps(spans, streamed_call)

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    mine = [r for r in lines if r.get("request_id") == request_id]
    assert any(r["logger"] == "bytespike.access" for r in mine)
    assert all(r["trace_id"] == TRACE for r in mine)


def assert_steps(spans: list[Span], call: Span) -> None:
    """Its steps, each a child of the call, one after another, all within it."""
    steps = sorted(
        (s for s in spans if s.parent_span_id == call.span_id), key=lambda s: s.start_time_unix_nano
    )
    assert [s.name for s in steps] == STEPS
    assert all(s.trace_id == call.trace_id for s in steps)
    for before, after in itertools.pairwise(steps):
        assert before.end_time_unix_nano <= after.start_time_unix_nano
    assert call.start_time_unix_nano <= steps[0].start_time_unix_nano
    assert steps[-1].end_time_unix_nano <= call.end_time_unix_nano


@pytest.mark.parametrize(
    ("env", "setting", "on"),
    [
        ({}, None, False),
        ({}, "http://127.0.0.1:4318", True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, None, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, None, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"},
            None,
            False,
        ),
        ({"OTEL_TRACES_EXPORTER": "none"}, "http://127.0.0.1:4318", False),
    ],
)
def test_traces_are_off_unless_an_otlp_endpoint_is_configured(env, setting, on):
    assert configured(Settings(otlp_endpoint=setting), env) is on
