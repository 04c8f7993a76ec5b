"""The otlp_json_file exporters write what the Collector's otlpjsonfile receiver reads.

Real SDK providers and processors feed the exporters; every line is decoded
back into the upstream OTLP protobuf request (after turning the hex ids back
into bytes, the one place OTLP/JSON differs from protobuf JSON) and compared
with what was emitted.
"""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import os
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch.distro import _diagnostics
from agentwatch.distro.file_exporter import (
    OTLPJsonFileLogExporter,
    OTLPJsonFileMetricExporter,
    OTLPJsonFileSpanExporter,
)
from agentwatch.distro.settings import reset_settings

HEX_ID_KEYS = {"traceId", "spanId", "parentSpanId"}
RESOURCE = Resource.create({"service.name": "shop", "service.version": "1.2.3"})


def _hex_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64encode(bytes.fromhex(value)).decode() if key in HEX_ID_KEYS else _hex_to_base64(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_to_base64(item) for item in node]
    return node


def parse_otlp_json_line(line: str, request_type: type) -> Any:
    """Decode one OTLP/JSON line into the protobuf request (hex ids -> bytes)."""
    data = json.loads(line)
    return json_format.ParseDict(_hex_to_base64(data), request_type())


def read_requests(path: Path, request_type: type) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [parse_otlp_json_line(line, request_type) for line in text.splitlines()]


def all_ids(node: Any) -> list[tuple[str, str]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in HEX_ID_KEYS:
                found.append((key, value))
            else:
                found.extend(all_ids(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(all_ids(item))
    return found


def attrs(pb_attributes) -> dict[str, Any]:
    result = {}
    for kv in pb_attributes:
        kind = kv.value.WhichOneof("value")
        result[kv.key] = getattr(kv.value, kind)
    return result


def test_spans_round_trip_through_otlp_proto(tmp_path: Path) -> None:
    exporter = OTLPJsonFileSpanExporter(directory=str(tmp_path))
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("test.scope")
    with tracer.start_as_current_span(
        "GET /items/{item_id}",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/items/{item_id}", "http.response.status_code": 500, "ratio": 0.5},
    ) as server:
        with tracer.start_as_current_span("SELECT items", kind=SpanKind.CLIENT, attributes={"db.system": "sqlite"}):
            pass
        with tracer.start_as_current_span("plan", attributes={"agentwatch.planner.steps": 3, "flag": True}) as plan:
            plan.add_event("tick", {"n": 1})
        server.set_status(Status(StatusCode.ERROR, "boom"))
    provider.force_flush()
    provider.shutdown()

    lines = (tmp_path / "traces.jsonl").read_text().splitlines()
    assert len(lines) == 1  # one batch -> one export request -> one line
    raw = json.loads(lines[0])
    assert "resourceSpans" in raw  # lowerCamelCase, not resource_spans
    for key, value in all_ids(raw):
        expected = 32 if key == "traceId" else 16
        assert re.fullmatch(f"[0-9a-f]{{{expected}}}", value), (key, value)

    (request,) = read_requests(tmp_path / "traces.jsonl", ExportTraceServiceRequest)
    resource = attrs(request.resource_spans[0].resource.attributes)
    assert resource["service.name"] == "shop"
    assert request.resource_spans[0].scope_spans[0].scope.name == "test.scope"
    spans = {span.name: span for span in request.resource_spans[0].scope_spans[0].spans}
    assert set(spans) == {"GET /items/{item_id}", "SELECT items", "plan"}
    root = spans["GET /items/{item_id}"]
    assert root.trace_id == server.get_span_context().trace_id.to_bytes(16, "big")
    assert root.span_id == server.get_span_context().span_id.to_bytes(8, "big")
    assert root.parent_span_id == b""
    assert root.kind == 2 and raw["resourceSpans"][0]["scopeSpans"][0]["spans"][-1]["kind"] == 2  # int enum
    assert root.status.code == 2 and root.status.message == "boom"
    assert attrs(root.attributes) == {"http.route": "/items/{item_id}", "http.response.status_code": 500, "ratio": 0.5}
    for child in ("SELECT items", "plan"):
        assert spans[child].parent_span_id == root.span_id
        assert spans[child].trace_id == root.trace_id
    assert spans["SELECT items"].kind == 3
    assert attrs(spans["plan"].attributes) == {"agentwatch.planner.steps": 3, "flag": True}
    assert spans["plan"].events[0].name == "tick"
    assert root.end_time_unix_nano > root.start_time_unix_nano > 0


def test_metrics_cumulative_histogram_with_hex_exemplars(tmp_path: Path) -> None:
    exporter = OTLPJsonFileMetricExporter(directory=str(tmp_path))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    tracer_provider = TracerProvider(resource=RESOURCE)
    meter = meter_provider.get_meter("test.meter")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    requests = meter.create_counter("app.requests")
    ok = {"http.route": "/items/{item_id}", "http.response.status_code": 200, "http.request.method": "GET"}
    with tracer_provider.get_tracer("t").start_as_current_span("server"):  # sampled: exemplars carry ids
        for value in (0.004, 0.02, 0.3):
            duration.record(value, ok)
        duration.record(1.5, {**ok, "http.response.status_code": 503})
        requests.add(2)
    meter_provider.force_flush()
    requests.add(3)
    meter_provider.force_flush()
    meter_provider.shutdown()

    path = tmp_path / "metrics.jsonl"
    raw_lines = path.read_text().splitlines()
    assert len(raw_lines) >= 2
    for line in raw_lines:
        for key, value in all_ids(json.loads(line)):
            assert re.fullmatch("[0-9a-f]{32}" if key == "traceId" else "[0-9a-f]{16}", value)
    assert all_ids(json.loads(raw_lines[0])), "exemplars should carry trace/span ids"

    requests_pb = read_requests(path, ExportMetricsServiceRequest)
    first = {m.name: m for m in requests_pb[0].resource_metrics[0].scope_metrics[0].metrics}
    histogram = first["http.server.request.duration"].histogram
    assert histogram.aggregation_temporality == 2  # CUMULATIVE
    points = {attrs(p.attributes)["http.response.status_code"]: p for p in histogram.data_points}
    assert points[200].count == 3 and points[503].count == 1
    assert points[200].sum == pytest.approx(0.324)
    assert sum(points[200].bucket_counts) == 3
    assert len(points[200].bucket_counts) == len(points[200].explicit_bounds) + 1
    assert attrs(points[200].attributes)["http.route"] == "/items/{item_id}"
    assert first["app.requests"].sum.data_points[0].as_int == 2
    second = {m.name: m for m in requests_pb[1].resource_metrics[0].scope_metrics[0].metrics}
    assert second["app.requests"].sum.aggregation_temporality == 2
    assert second["app.requests"].sum.is_monotonic
    assert second["app.requests"].sum.data_points[0].as_int == 5  # cumulative, not 3


def test_logs_carry_trace_context_in_hex(tmp_path: Path) -> None:
    exporter = OTLPJsonFileLogExporter(directory=str(tmp_path))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    app_logger = logging.getLogger("test.file_exporter.app")
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    app_logger.propagate = False
    tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
    try:
        with tracer.start_as_current_span("handler") as span:
            app_logger.warning("payment %s declined", "P-1")
        app_logger.info("outside any span")
        logger_provider.force_flush()
    finally:
        app_logger.removeHandler(handler)
        logger_provider.shutdown()

    path = tmp_path / "logs.jsonl"
    raw = json.loads(path.read_text().splitlines()[0])
    records_json = raw["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    context = span.get_span_context()
    assert records_json[0]["traceId"] == f"{context.trace_id:032x}"
    assert records_json[0]["spanId"] == f"{context.span_id:016x}"
    assert records_json[0]["severityNumber"] == 13  # WARN as an integer enum
    assert "traceId" not in records_json[1]  # no span -> no id (not an all-zero id)

    (request,) = read_requests(path, ExportLogsServiceRequest)
    scope_logs = request.resource_logs[0].scope_logs[0]
    assert scope_logs.scope.name == "test.file_exporter.app"
    warning, info = scope_logs.log_records
    assert warning.body.string_value == "payment P-1 declined"
    assert warning.severity_text == "WARN"
    assert warning.trace_id == context.trace_id.to_bytes(16, "big")
    assert warning.span_id == context.span_id.to_bytes(8, "big")
    assert info.body.string_value == "outside any span" and info.trace_id == b""


def _finished_spans(count: int, payload: str = "x" * 200) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for number in range(count):
        with tracer.start_as_current_span(f"span-{number}", attributes={"payload": payload}):
            pass
    return list(memory.get_finished_spans())


def test_rotation_bounds_the_size(tmp_path: Path) -> None:
    spans = _finished_spans(1)
    max_bytes = 4000
    exporter = OTLPJsonFileSpanExporter(directory=str(tmp_path), max_bytes=max_bytes)
    line_size = None
    for _ in range(40):
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        if line_size is None:
            line_size = (tmp_path / "traces.jsonl").stat().st_size
    current, rotated = tmp_path / "traces.jsonl", tmp_path / "traces.jsonl.1"
    assert rotated.exists()
    assert current.stat().st_size <= max_bytes and rotated.stat().st_size <= max_bytes
    assert current.stat().st_size + rotated.stat().st_size <= 2 * max_bytes
    assert line_size is not None and line_size < max_bytes
    for path in (current, rotated):
        assert len(read_requests(path, ExportTraceServiceRequest)) >= 1
    assert sorted(os.listdir(tmp_path)) == ["traces.jsonl", "traces.jsonl.1"]

    # A line larger than max_bytes is still written, alone in a fresh file.
    big = _finished_spans(1, payload="y" * (2 * max_bytes))
    assert exporter.export(big) is SpanExportResult.SUCCESS
    (request,) = read_requests(current, ExportTraceServiceRequest)
    assert request.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.string_value.startswith("yyy")
    assert current.stat().st_size > max_bytes
    # ...and the next export rotates it away again.
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert len(read_requests(current, ExportTraceServiceRequest)) == 1
    assert rotated.stat().st_size > max_bytes


def _export_many(exporter: OTLPJsonFileSpanExporter, spans: list, times: int, queue) -> None:
    results = [exporter.export(spans) for _ in range(times)]
    queue.put(sum(result is SpanExportResult.SUCCESS for result in results))


@pytest.mark.parametrize("max_bytes", [64 * 1024 * 1024, 40_000], ids=["no-rotation", "rotating"])
def test_concurrent_processes_write_whole_lines(tmp_path: Path, max_bytes: int) -> None:
    spans = _finished_spans(3)
    exporter = OTLPJsonFileSpanExporter(directory=str(tmp_path), max_bytes=max_bytes)  # created before fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    times = 150
    workers = [context.Process(target=_export_many, args=(exporter, spans, times, queue)) for _ in range(3)]
    for worker in workers:
        worker.start()
    _export_many(exporter, spans, times, queue)  # the parent writes too
    for worker in workers:
        worker.join(20)
        assert worker.exitcode == 0
    assert sum(queue.get(timeout=5) for _ in range(4)) == 4 * times

    lines = []
    for name in ("traces.jsonl.1", "traces.jsonl"):
        path = tmp_path / name
        if path.exists():
            text = path.read_text()
            assert text.endswith("\n")
            lines.extend(text.splitlines())
    for line in lines:
        request = parse_otlp_json_line(line, ExportTraceServiceRequest)
        assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == ["span-0", "span-1", "span-2"]
    if max_bytes > 1_000_000:
        assert len(lines) == 4 * times
    else:
        assert (tmp_path / "traces.jsonl.1").exists()
        total = sum((tmp_path / n).stat().st_size for n in ("traces.jsonl", "traces.jsonl.1"))
        assert total <= 2 * max_bytes


def test_unwritable_directory_fails_and_warns_once(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    directory = blocker / "telemetry"  # cannot be created, even by root
    spans = _finished_spans(1)
    exporter = OTLPJsonFileSpanExporter(directory=str(directory))
    log_exporter = OTLPJsonFileLogExporter(directory=str(directory))
    for _ in range(3):
        assert exporter.export(spans) is SpanExportResult.FAILURE
    assert log_exporter.export([]) is LogRecordExportResult.SUCCESS  # nothing to write
    messages = [m for m in _diagnostics.messages() if str(directory) in m]
    assert len(messages) == 1, messages
    assert "traces.jsonl" in messages[0] and "Not a directory" in messages[0]
    assert "traces.jsonl" in capsys.readouterr().err

    metric_exporter = OTLPJsonFileMetricExporter(directory=str(directory))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1)
    provider.force_flush()  # the reader swallows the FAILURE; the app never sees an exception
    provider.shutdown()
    assert len([m for m in _diagnostics.messages() if "metrics.jsonl" in m]) == 1


def test_defaults_come_from_settings_and_unknown_kwargs_are_ignored(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AGENTWATCH_FILE_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("AGENTWATCH_FILE_MAX_MB", "0.01")
    reset_settings()
    try:
        exporter = OTLPJsonFileSpanExporter(timeout=5, compression="gzip")
        assert exporter.path == str(tmp_path / "from-env" / "traces.jsonl")
        assert exporter._writer.file.max_bytes == int(0.01 * 1024 * 1024)
        assert exporter.export(_finished_spans(1)) is SpanExportResult.SUCCESS
        assert (tmp_path / "from-env" / "traces.jsonl").exists()
    finally:
        reset_settings()


def test_shutdown_is_idempotent_and_stops_writing(tmp_path: Path) -> None:
    exporter = OTLPJsonFileMetricExporter(directory=str(tmp_path))
    assert exporter.force_flush() is True
    exporter.shutdown()
    exporter.shutdown()
    span_exporter = OTLPJsonFileSpanExporter(directory=str(tmp_path))
    span_exporter.shutdown()
    span_exporter.shutdown()
    assert span_exporter.export(_finished_spans(1)) is SpanExportResult.FAILURE
    assert not (tmp_path / "traces.jsonl").exists()
    assert exporter.export(None) is MetricExportResult.SUCCESS  # nothing to do is not a failure


def test_registered_under_the_sdk_exporter_entry_points() -> None:
    from importlib.metadata import entry_points

    expected = {
        "opentelemetry_traces_exporter": OTLPJsonFileSpanExporter,
        "opentelemetry_metrics_exporter": OTLPJsonFileMetricExporter,
        "opentelemetry_logs_exporter": OTLPJsonFileLogExporter,
    }
    for group, cls in expected.items():
        (entry_point,) = entry_points(group=group, name="agentwatch_file")
        assert entry_point.load() is cls
        # The official opentelemetry-exporter-otlp-json-file's name is not taken (issue 17, item 2).
        assert not [ep for ep in entry_points(group=group, name="otlp_json_file") if ep.value.startswith("agentwatch")]


def test_the_official_name_resolves_to_ours_only_where_the_official_package_is_absent(monkeypatch) -> None:
    from agentwatch.distro import exporters
    from agentwatch.distro.settings import load_settings

    settings = load_settings({"OTEL_TRACES_EXPORTER": "otlp_json_file", "AGENTWATCH_ENDPOINT_CHECK": "false"})
    assert exporters.resolve_names("traces", settings) == [("otlp_json_file", "agentwatch_file")]
    local = load_settings({"AGENTWATCH_EXPORT": "local"})
    assert exporters.resolve_names("traces", local) == [("agentwatch_file", "agentwatch_file")]

    class Official:  # what the official package's entry point looks like to the resolver
        name = "otlp_json_file"
        value = "opentelemetry.exporter.otlp.json.file:OTLPJsonFileSpanExporter"

    installed = dict(exporters._installed("traces"), otlp_json_file=Official())
    monkeypatch.setattr(exporters, "_installed", lambda signal: installed)
    assert exporters.resolve_names("traces", settings) == [("otlp_json_file", "otlp_json_file")]  # the official one
    assert exporters.resolve_names("traces", local) == [("agentwatch_file", "agentwatch_file")]  # local: still ours


def _export_under_file_size_limit(directory: str, limit: int, queue) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    exporter = OTLPJsonFileSpanExporter(directory=directory)
    queue.put(exporter.export(_finished_spans(1, payload="z" * 4000)).name)


def test_a_failed_write_leaves_no_partial_line(tmp_path: Path) -> None:
    exporter = OTLPJsonFileSpanExporter(directory=str(tmp_path))
    assert exporter.export(_finished_spans(1)) is SpanExportResult.SUCCESS
    path = tmp_path / "traces.jsonl"
    size = path.stat().st_size
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_export_under_file_size_limit, args=(str(tmp_path), size + 1000, queue))
    child.start()
    child.join(10)
    assert queue.get(timeout=5) == "FAILURE"  # "file too large" half-way through the line
    assert path.stat().st_size == size  # the fragment was taken back
    assert exporter.export(_finished_spans(1)) is SpanExportResult.SUCCESS
    assert len(read_requests(path, ExportTraceServiceRequest)) == 2
