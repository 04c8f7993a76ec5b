"""The local OTLP receiver, driven by the real upstream OTLP exporters."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry._logs import SeverityNumber
from grpc import Compression as GrpcCompression
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from otlp_receiver import HTTP_EXPORTER_RETRIES_429, OTLPReceiver, decode_any_value

RESOURCE = Resource.create({"service.name": "rx-test", "deployment.environment.name": "test"})

SPAN_EXPORTERS = {"grpc": GrpcSpanExporter, "http": HttpSpanExporter}
METRIC_EXPORTERS = {"grpc": GrpcMetricExporter, "http": HttpMetricExporter}
LOG_EXPORTERS = {"grpc": GrpcLogExporter, "http": HttpLogExporter}


def _exporter(table, rx, signal, **kwargs):
    cls = table[rx.protocol]
    if rx.protocol == "grpc":
        kwargs.setdefault("insecure", True)
    return cls(endpoint=rx.endpoint_for(signal), **kwargs)


@pytest.fixture(params=["grpc", "http"])
def rx(request):
    with OTLPReceiver(protocol=request.param) as receiver:
        yield receiver


def _emit_spans(provider):
    tracer = provider.get_tracer("agent.tests", "1.2.3")
    with tracer.start_as_current_span("POST /ask", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/ask")
        with tracer.start_as_current_span(
            "gemini generate",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.request.model": "gemini-2.5-flash",
                "gen_ai.usage.input_tokens": 3,
                "temperature": 0.25,
                "cached": False,
                "gen_ai.response.finish_reasons": ("STOP",),
                "ids": [1, 2, 3],
            },
        ) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "quota"))
    return root, child


# --------------------------------------------------------------------------- traces


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_spans_roundtrip(rx, compressed):
    kwargs = {}
    if compressed:
        kwargs["compression"] = GrpcCompression.Gzip if rx.protocol == "grpc" else HttpCompression.Gzip
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(_exporter(SPAN_EXPORTERS, rx, "traces", **kwargs)))
    root, child = _emit_spans(provider)
    provider.shutdown()

    assert rx.requests["traces"] == 2  # one per span with SimpleSpanProcessor
    spans = {s["name"]: s for s in rx.spans()}
    assert set(spans) == {"POST /ask", "gemini generate"}
    server, client = spans["POST /ask"], spans["gemini generate"]

    assert server["kind"] == "SERVER" and client["kind"] == "CLIENT"
    assert server["trace_id"] == f"{root.get_span_context().trace_id:032x}"
    assert server["span_id"] == f"{root.get_span_context().span_id:016x}"
    assert server["parent_span_id"] is None
    assert client["trace_id"] == server["trace_id"]
    assert client["span_id"] == f"{child.get_span_context().span_id:016x}"
    assert client["parent_span_id"] == server["span_id"]

    assert server["attributes"] == {"http.route": "/ask"}
    assert client["attributes"] == {
        "gen_ai.request.model": "gemini-2.5-flash",
        "gen_ai.usage.input_tokens": 3,
        "temperature": 0.25,
        "cached": False,
        "gen_ai.response.finish_reasons": ["STOP"],
        "ids": [1, 2, 3],
    }
    assert client["status"] == "ERROR" and client["status_code"] == 2
    assert client["status_message"] == "quota"
    assert server["status"] == "UNSET"
    assert [(e["name"], e["attributes"]) for e in client["events"]] == [("retry", {"attempt": 2})]
    assert client["scope"] == "agent.tests" and client["scope_version"] == "1.2.3"
    assert client["resource"]["service.name"] == "rx-test"
    assert client["resource"]["deployment.environment.name"] == "test"
    assert client["resource"]["telemetry.sdk.language"] == "python"
    assert 0 < client["start_time_unix_nano"] <= client["end_time_unix_nano"]
    assert rx.spans("POST /ask") == [server]


def test_batch_processor_and_wait_for(rx):
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(
        BatchSpanProcessor(_exporter(SPAN_EXPORTERS, rx, "traces"), schedule_delay_millis=50)
    )
    tracer = provider.get_tracer("batch")
    for i in range(5):
        with tracer.start_as_current_span(f"step-{i}"):
            pass
    assert rx.wait_for(lambda r: len(r.spans()) == 5, timeout=5)
    assert sorted(s["name"] for s in rx.spans()) == [f"step-{i}" for i in range(5)]
    provider.shutdown()
    assert rx.wait_for(lambda r: False, timeout=0.05) is False
    assert rx.wait_for(lambda r: r.spans()[99], timeout=0.05) is False  # exception = not yet


def test_request_headers_are_recorded(rx):
    exporter = _exporter(SPAN_EXPORTERS, rx, "traces", headers={"x-tenant": "acme"})
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("h").start_span("s").end()
    provider.shutdown()
    (headers,) = rx.request_headers("traces")
    assert headers["x-tenant"] == "acme"
    assert rx.request_headers("logs") == []


# --------------------------------------------------------------------------- metrics


def test_metrics_roundtrip(rx):
    reader = PeriodicExportingMetricReader(
        _exporter(METRIC_EXPORTERS, rx, "metrics"), export_interval_millis=60_000
    )
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("agent.metrics", "0.1")
    counter = meter.create_counter("agent.requests", unit="{request}", description="requests")
    histogram = meter.create_histogram("agent.latency", unit="s")
    gauge = meter.create_gauge("agent.queue.depth")
    updown = meter.create_up_down_counter("agent.inflight")
    counter.add(2, {"intent": "faq"})
    counter.add(1, {"intent": "other"})
    histogram.record(0.2, {"intent": "faq"})
    histogram.record(7.0, {"intent": "faq"})
    gauge.set(4.5)
    updown.add(-1)
    provider.force_flush()
    provider.shutdown()

    # force_flush and shutdown each export once; entries arrive in order
    assert rx.requests["metrics"] == 2
    by_name = {m["name"]: m for m in rx.metrics()}  # the last export wins

    requests = by_name["agent.requests"]
    assert requests["type"] == "sum" and requests["monotonic"] is True
    assert requests["temporality"] == "CUMULATIVE"
    assert requests["unit"] == "{request}" and requests["description"] == "requests"
    assert requests["scope"] == "agent.metrics"
    assert requests["resource"]["service.name"] == "rx-test"
    values = {p["attributes"]["intent"]: p["value"] for p in requests["data_points"]}
    assert values == {"faq": 2, "other": 1}

    latency = by_name["agent.latency"]
    assert latency["type"] == "histogram" and latency["unit"] == "s"
    (point,) = latency["data_points"]
    assert point["attributes"] == {"intent": "faq"}
    assert point["count"] == 2 and point["sum"] == pytest.approx(7.2)
    assert point["min"] == 0.2 and point["max"] == 7.0
    assert sum(point["bucket_counts"]) == 2
    assert len(point["bucket_counts"]) == len(point["explicit_bounds"]) + 1

    assert by_name["agent.queue.depth"]["type"] == "gauge"
    assert by_name["agent.queue.depth"]["data_points"][0]["value"] == 4.5
    assert by_name["agent.inflight"]["type"] == "sum"
    assert by_name["agent.inflight"]["monotonic"] is False
    assert by_name["agent.inflight"]["data_points"][0]["value"] == -1
    assert len(rx.metrics("agent.latency")) == 2
    assert rx.metrics("agent.latency")[-1] == latency


# --------------------------------------------------------------------------- logs


def test_logs_roundtrip(rx):
    tracer_provider = TracerProvider()
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(_exporter(LOG_EXPORTERS, rx, "logs")))

    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    py_logger = logging.getLogger("agent.logs.test")
    py_logger.propagate = False
    py_logger.setLevel(logging.INFO)
    py_logger.addHandler(handler)
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("handle") as span:
            py_logger.warning("retrieved %d docs", 3, extra={"intent": "faq"})
        otel_logger = logger_provider.get_logger("agent.events", "9.9")
        otel_logger.emit(
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body={"verdict": "ok", "scores": [0.5, 1], "raw": b"\x00\x01"},
            attributes={"critique.round": 1},
            event_name="agent.critique",
        )
    finally:
        py_logger.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()

    first, second = rx.logs()
    assert first["body"] == "retrieved 3 docs"
    assert first["severity_text"] == "WARN" or first["severity_text"] == "WARNING"
    assert first["severity_number"] == SeverityNumber.WARN.value
    assert first["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert first["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert first["attributes"]["intent"] == "faq"
    assert first["scope"] == "agent.logs.test"
    assert first["resource"]["service.name"] == "rx-test"

    assert second["body"] == {"verdict": "ok", "scores": [0.5, 1], "raw": b"\x00\x01"}
    assert second["event_name"] == "agent.critique"
    assert second["attributes"] == {"critique.round": 1}
    assert second["trace_id"] is None and second["span_id"] is None
    assert second["scope"] == "agent.events" and second["scope_version"] == "9.9"


# --------------------------------------------------------------------------- faults


def _one_span_export(rx, timeout):
    exporter = _exporter(SPAN_EXPORTERS, rx, "traces", timeout=timeout)
    provider = TracerProvider()
    tracer = provider.get_tracer("f")
    span = tracer.start_span("fault")
    span.end()
    try:
        return exporter.export([span])
    finally:
        exporter.shutdown()


def test_unavailable_then_ok(rx, caplog):
    caplog.set_level(logging.CRITICAL)  # the exporters log the failures loudly
    rx.set_mode("unavailable")
    assert _one_span_export(rx, timeout=0.5) == SpanExportResult.FAILURE
    assert rx.requests["traces"] >= 1
    assert rx.spans() == []
    rx.set_mode("ok")
    assert _one_span_export(rx, timeout=5) == SpanExportResult.SUCCESS
    assert [s["name"] for s in rx.spans()] == ["fault"]
    with pytest.raises(ValueError):
        rx.set_mode("flaky")


def test_blackhole_never_answers(rx, caplog):
    caplog.set_level(logging.CRITICAL)
    rx.set_mode("blackhole")
    started = time.monotonic()
    assert _one_span_export(rx, timeout=0.5) == SpanExportResult.FAILURE
    assert time.monotonic() - started >= 0.4  # it waited for the answer that never came
    assert rx.requests["traces"] >= 1 and rx.spans() == []
    rx.set_mode("ok")
    assert _one_span_export(rx, timeout=5) == SpanExportResult.SUCCESS
    assert len(rx.spans()) == 1


def test_throttled_tells_the_exporter_when_to_retry(rx, caplog):
    """HTTP 429 + Retry-After / gRPC RESOURCE_EXHAUSTED + RetryInfo: the real exporters wait the given
    delay before retrying the same batch (their own first back-off would be 0.8-1.2 s)."""
    if rx.protocol == "http" and not HTTP_EXPORTER_RETRIES_429:
        pytest.skip("opentelemetry-exporter-otlp-proto-http < 1.45 (the lowest resolution) does not retry an HTTP 429: "
                    "it drops the batch at once, so there is no retry for Retry-After to time")
    caplog.set_level(logging.CRITICAL)
    rx.set_mode("throttled", retry_after=1.6)
    result: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: result.append(_one_span_export(rx, timeout=6)))
    worker.start()
    assert rx.wait_for(lambda r: r.requests["traces"] >= 1, timeout=5)
    rx.set_mode("ok")  # the retry succeeds
    worker.join(10)
    assert result == [SpanExportResult.SUCCESS]
    (first, digest1), (second, digest2) = rx.attempts("traces")
    assert digest1 == digest2  # the same batch, retried
    assert second - first >= 1.5, second - first
    assert [s["name"] for s in rx.spans()] == ["fault"]


def test_throttled_retry_after_beyond_the_timeout_fails_at_once(rx, caplog):
    caplog.set_level(logging.CRITICAL)
    rx.set_mode("throttled", retry_after=30)
    started = time.monotonic()
    assert _one_span_export(rx, timeout=5) == SpanExportResult.FAILURE
    assert time.monotonic() - started < 2  # no waiting past the export's own deadline
    assert rx.requests["traces"] == 1 and rx.spans() == []


def test_throttled_without_a_hint_and_bad_hints(caplog):
    caplog.set_level(logging.CRITICAL)
    with OTLPReceiver("http") as rx:
        rx.set_mode("throttled", retry_after=None)
        request = urllib.request.Request(rx.endpoint + "/v1/traces", data=b"", method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 429 and caught.value.headers.get("Retry-After") is None
        rx.set_mode("throttled", retry_after=2)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 429 and caught.value.headers["Retry-After"] == "2"
        for bad in (-1, float("nan"), float("inf")):
            with pytest.raises(ValueError):
                rx.set_mode("throttled", retry_after=bad)


def test_stop_and_start_on_same_port(rx, caplog):
    caplog.set_level(logging.CRITICAL)
    exporter = _exporter(SPAN_EXPORTERS, rx, "traces", timeout=0.5)
    provider = TracerProvider()
    tracer = provider.get_tracer("restart")

    def export(name):
        span = tracer.start_span(name)
        span.end()
        return exporter.export([span])

    port = rx.port
    assert export("before") == SpanExportResult.SUCCESS
    rx.stop()
    assert not rx.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    assert export("while-down") == SpanExportResult.FAILURE
    rx.start()
    assert rx.port == port and rx.running
    # the same exporter (same channel / connection pool) recovers
    ok = rx.wait_for(lambda r: export("after") == SpanExportResult.SUCCESS, timeout=8, interval=0.1)
    exporter.shutdown()
    assert ok
    assert [s["name"] for s in rx.spans()][0] == "before"
    assert "after" in [s["name"] for s in rx.spans()]
    assert "while-down" not in [s["name"] for s in rx.spans()]
    rx.clear()
    assert rx.spans() == [] and rx.requests == {"traces": 0, "metrics": 0, "logs": 0}


# --------------------------------------------------------------------------- odds and ends


def test_two_receivers_get_distinct_free_ports():
    with OTLPReceiver("grpc") as a, OTLPReceiver("http") as b:
        assert a.port != b.port
        assert a.endpoint == f"http://127.0.0.1:{a.port}"
        assert a.env() == {"OTEL_EXPORTER_OTLP_ENDPOINT": a.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        assert b.env()["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        assert b.endpoint_for("logs") == f"{b.endpoint}/v1/logs"
        assert a.endpoint_for("logs") == a.endpoint
    with pytest.raises(ValueError):
        OTLPReceiver("thrift")


def test_http_edge_cases():
    with OTLPReceiver("http") as rx:
        request = trace_service_pb2.ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.name = "hand-made"
        span.trace_id = bytes(range(16))
        span.span_id = bytes(range(8))

        def post(path, body, **headers):
            req = urllib.request.Request(
                rx.endpoint + path,
                data=body,
                headers={"Content-Type": "application/x-protobuf", **headers},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as err:
                return err.code, err.read()

        status, body = post("/v1/traces", gzip.compress(request.SerializeToString()), **{"Content-Encoding": "gzip"})
        assert status == 200
        assert trace_service_pb2.ExportTraceServiceResponse.FromString(body) is not None
        assert rx.spans()[0]["trace_id"] == bytes(range(16)).hex()
        assert post("/v1/nope", b"")[0] == 404
        assert post("/v1/traces", b"\xff\xff not protobuf")[0] == 400
        assert post("/v1/traces", b"{}", **{"Content-Type": "application/json"})[0] == 415
        rx.set_mode("unavailable")
        assert post("/v1/traces", request.SerializeToString())[0] == 503
        assert rx.requests["traces"] == 4  # the 404 is not an export request


def test_decode_any_value():
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

    value = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="s", value=AnyValue(string_value="x")),
                KeyValue(key="i", value=AnyValue(int_value=-3)),
                KeyValue(key="d", value=AnyValue(double_value=1.5)),
                KeyValue(key="b", value=AnyValue(bool_value=True)),
                KeyValue(key="y", value=AnyValue(bytes_value=b"\x01")),
                KeyValue(
                    key="a",
                    value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue()])),
                ),
            ]
        )
    )
    assert decode_any_value(value) == {"s": "x", "i": -3, "d": 1.5, "b": True, "y": b"\x01", "a": [1, None]}
    assert decode_any_value(AnyValue()) is None
