"""``agentwatch.report.render`` turns the otlp_json_file output into a readable report.

The first test drives the real SDK pipeline into the real file exporters; the
others write OTLP/JSON lines by hand to pin down merging, percentiles and
robustness against damaged files.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch.distro.file_exporter import (
    OTLPJsonFileLogExporter,
    OTLPJsonFileMetricExporter,
    OTLPJsonFileSpanExporter,
)
from agentwatch.report import quantile, render

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
T0 = 1_700_000_000_000_000_000  # ns


def _indent(line: str, text: str) -> int:
    return line.index(text)


def _line_with(report: str, text: str) -> str:
    matches = [line for line in report.splitlines() if text in line]
    assert matches, f"{text!r} not in report:\n{report}"
    return matches[0]


def test_report_of_a_real_pipeline(tmp_path: Path) -> None:
    resource = Resource.create(
        {"service.name": "shop", "service.version": "2.0.1", "telemetry.distro.name": "agentwatch"}
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(str(tmp_path))))
    reader = PeriodicExportingMetricReader(OTLPJsonFileMetricExporter(str(tmp_path)), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPJsonFileLogExporter(str(tmp_path))))
    handler = LoggingHandler(logger_provider=logger_provider)
    app_logger = logging.getLogger("test.report.app")
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    app_logger.propagate = False

    tracer = tracer_provider.get_tracer("test")
    duration = meter_provider.get_meter("test").create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=BOUNDS
    )
    tokens = meter_provider.get_meter("test").create_counter("gen_ai.client.token.usage.total", unit="{token}")
    try:
        with tracer.start_as_current_span(
            "GET /items/{item_id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "http.route": "/items/{item_id}",
                "http.response.status_code": 200,
                "url.path": "/items/42",
                "user.secret": "not shown",
            },
        ) as server:
            with tracer.start_as_current_span(
                "SELECT shop.db",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system.name": "sqlite",
                    "db.query.text": "SELECT id, name, price, description FROM items WHERE id = ? AND visible = 1",
                },
            ):
                time.sleep(0.002)
            with tracer.start_as_current_span(
                "generate_content gemini-2.0-flash",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "generate_content",
                    "gen_ai.request.model": "gemini-2.0-flash",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 34,
                    "agentwatch.intent": "order_status",
                },
            ):
                app_logger.info("answered item %s", 42)
        with tracer.start_as_current_span(
            "POST /orders", kind=SpanKind.SERVER, attributes={"http.route": "/orders", "http.response.status_code": 500}
        ) as failing:
            failing.set_status(Status(StatusCode.ERROR, "database is locked"))
        app_logger.error("order failed")
        for value in [0.003] * 50 + [0.03] * 45 + [0.7] * 5:
            duration.record(value, {"http.route": "/items/{item_id}", "http.response.status_code": 200,
                                    "http.request.method": "GET"})
        duration.record(0.2, {"http.route": "/orders", "http.response.status_code": 500, "http.request.method": "POST"})
        tokens.add(46)
        meter_provider.force_flush()
    finally:
        app_logger.removeHandler(handler)
        meter_provider.shutdown()
        logger_provider.shutdown()
        tracer_provider.shutdown()

    report = render(str(tmp_path))
    assert "\x1b[" not in report
    assert "shop 2.0.1 (agentwatch)" in report
    assert "4 spans in 2 traces" in report and "2 log records" in report

    trace_id = f"{server.get_span_context().trace_id:032x}"
    assert trace_id in report
    parent = _line_with(report, "GET /items/{item_id}  SERVER")
    child = _line_with(report, "SELECT shop.db")
    llm = _line_with(report, "generate_content gemini-2.0-flash")
    lines = report.splitlines()
    assert lines.index(parent) < lines.index(child) < lines.index(llm)
    assert _indent(child, "SELECT shop.db") > _indent(parent, "GET /items")
    assert _indent(llm, "generate_content") == _indent(child, "SELECT shop.db")
    assert "http.route=/items/{item_id}" in parent and "http.response.status_code=200" in parent
    assert "url.path=/items/42" in parent and "user.secret" not in report
    assert re.search(r"SERVER  \d+\.\d+ ms", parent)
    assert "db.system.name=sqlite" in child and "CLIENT" in child
    statement = re.search(r'db\.query\.text="([^"]*)"', child).group(1)
    assert statement.endswith("…") and len(statement) <= 60
    for expected in ("gen_ai.request.model=gemini-2.0-flash", "gen_ai.usage.input_tokens=12",
                     "gen_ai.usage.output_tokens=34", "agentwatch.intent=order_status"):
        assert expected in llm
    assert "ERROR database is locked" in _line_with(report, "POST /orders  SERVER")

    # metrics: request table, latency percentiles, other metrics
    assert "101 requests" in report and "1 error (5xx)" in report
    header = _line_with(report, "p99")
    assert header.split() == ["route", "count", "errors", "error", "%", "p50", "p95", "p99", "mean"]
    row = _line_with(report, "/items/{item_id}    100")
    p50, p95, p99, mean = (float(v) for v in re.findall(r"([\d.]+) ms", row))
    assert 3.0 <= p50 <= 5.0  # inside the first bucket, above the recorded min
    assert 25.0 <= p95 <= 50.0
    assert p99 == pytest.approx(660.0)  # 0.5 s + 4/5 of the (0.5 s, max 0.7 s] bucket
    assert mean == pytest.approx(50.0)
    assert re.search(r"gen_ai\.client\.token\.usage\.total\s+sum\s+46 \{token\}", report)

    # logs, with the trace they belong to
    info = _line_with(report, "answered item 42")
    assert "INFO" in info and trace_id[:8] in info and "test.report.app" in info
    error = _line_with(report, "order failed")
    assert "ERROR" in error and re.search(r"ERROR\s+-\s+test\.report\.app", error)

    coloured = render(str(tmp_path), color=True)
    assert "\x1b[31m" in coloured and "\x1b[2m" in coloured


def test_agent_pipeline_section_and_span_details(tmp_path: Path) -> None:
    """The agent instrumentors' own spans and metrics (through the context-manager API) in the report."""
    import agentwatch
    from agentwatch.instrumentors.intent import AgentwatchIntentInstrumentor
    from agentwatch.instrumentors.planner import AgentwatchPlannerInstrumentor
    from agentwatch.instrumentors.rag import AgentwatchRAGInstrumentor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(str(tmp_path))))
    reader = PeriodicExportingMetricReader(OTLPJsonFileMetricExporter(str(tmp_path)), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    logger_provider = LoggerProvider()  # the verdicts are gen_ai.evaluation.result log events
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPJsonFileLogExporter(str(tmp_path))))
    instrumentors = [AgentwatchIntentInstrumentor(), AgentwatchRAGInstrumentor(), AgentwatchPlannerInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider,
                                logger_provider=logger_provider)
    tracer = tracer_provider.get_tracer("test")
    try:
        for verdicts, intent in (([True], ("billing", 0.9)), ([False, True], ("billing", 0.7)),
                                 ([False, False, True], ("other", 0.3))):
            with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER):
                with agentwatch.intent_classification("keyword") as step:
                    step.record(intent)
                with agentwatch.retrieval("kb", top_k=2) as step:
                    step.record([{"id": "kb-1", "score": 0.91}, {"id": "kb-2", "score": 0.5}])
                with agentwatch.planning("support"):
                    for accepted in verdicts:
                        with agentwatch.critique("reviewer") as step:
                            step.record({"accepted": accepted, "score": 1.0 if accepted else 0.5})
        with agentwatch.retrieval("kb") as step:
            step.record([])
        meter_provider.force_flush()
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()
        logger_provider.shutdown()

    report = render(str(tmp_path))
    retrieval = _line_with(report, "retrieval kb  INTERNAL")
    assert "gen_ai.request.top_k=2" in retrieval and "gen_ai.retrieval.documents=[kb-1 0.91, kb-2 0.5]" in retrieval
    rejected = _line_with(report, "agentwatch.critique.verdict=rejected")
    assert "gen_ai.evaluation.score.value=0.5" in rejected  # read from the gen_ai.evaluation.result log event

    section = report[report.index("Agent pipeline"):report.index("Metrics  (")]
    assert "intents (keyword): 3 classified, 1 below the confidence threshold" in section
    assert re.search(r"billing\s+2\s+67%\s+0\.80\s+0", section), section
    assert re.search(r"other\s+1\s+33%\s+0\.30\s+1", section), section
    assert re.search(r"kb\s+4\s+0\s+1\.50\s+1\s+0\.910", section), section  # 4 retrievals, 6 docs, 1 empty
    assert re.search(r"support\s+3\s+0\s+1: 1  2: 1  3: 1\s+2\.00\s+1/3 \(33%\)", section), section
    assert re.search(r"reviewer\s+6\s+3\s+3", section), section


# --------------------------------------------------------------------------- hand-written OTLP/JSON


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _resource(name: str = "svc", instance: str = "i-1") -> dict[str, Any]:
    return {"attributes": [_kv("service.name", name), _kv("service.instance.id", instance)]}


def _histogram_line(instance: str, count_by_bucket: list[int], start: int, end: int, route: str = "/r",
                    status: int = 200) -> str:
    point = {
        "startTimeUnixNano": str(start),
        "timeUnixNano": str(end),
        "count": str(sum(count_by_bucket)),
        "sum": 0.01 * sum(count_by_bucket),
        "bucketCounts": [str(c) for c in count_by_bucket],
        "explicitBounds": BOUNDS,
        "attributes": [_kv("http.route", route), _kv("http.response.status_code", status)],
    }
    request = {
        "resourceMetrics": [{
            "resource": _resource(instance=instance),
            "scopeMetrics": [{"scope": {"name": "s"}, "metrics": [{
                "name": "http.server.request.duration",
                "unit": "s",
                "histogram": {"dataPoints": [point], "aggregationTemporality": 2},
            }, {
                "name": "app.jobs",
                "sum": {"dataPoints": [{"asInt": str(sum(count_by_bucket)), "startTimeUnixNano": str(start),
                                        "timeUnixNano": str(end)}],
                        "aggregationTemporality": 2, "isMonotonic": True},
            }]}],
        }]
    }
    return json.dumps(request)


def _span(name: str, span_id: str, parent: str = "", trace: str = "ab" * 16, start: int = T0,
          ms: float = 1.0, **extra: Any) -> dict[str, Any]:
    span = {"traceId": trace, "spanId": span_id, "name": name, "kind": 1, "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + int(ms * 1e6))}
    if parent:
        span["parentSpanId"] = parent
    span.update(extra)
    return span


def _spans_line(*spans: dict[str, Any]) -> str:
    return json.dumps({"resourceSpans": [{"resource": _resource(), "scopeSpans": [{"spans": list(spans)}]}]})


def test_metrics_from_two_processes_are_summed(tmp_path: Path) -> None:
    zeros = [0] * (len(BOUNDS) + 1)
    first = list(zeros)
    first[0] = 10
    second = list(zeros)
    second[3] = 30
    older = list(zeros)
    older[0] = 4
    lines = [
        _histogram_line("worker-a", older, T0, T0 + 5_000_000_000),  # superseded by the next, cumulative
        _histogram_line("worker-a", first, T0, T0 + 10_000_000_000),
        _histogram_line("worker-b", second, T0 + 1_000_000_000, T0 + 10_000_000_000),
        _histogram_line("worker-b", [0, 0, 0, 0, 0, 0, 0, 2, 0], T0, T0 + 10_000_000_000, route="/r", status=503),
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    report = render(str(tmp_path))
    assert "42 requests, 4.20/s, 2 errors (5xx), error rate 4.8%" in report
    assert re.search(r"/r\s+-\s+200\s+40\s+4\.00/s", report)
    assert re.search(r"/r\s+-\s+503\s+2\s+0\.20/s", report)
    row = _line_with(report, "/r        42")
    assert row.split()[:4] == ["/r", "42", "2", "4.8%"]
    p50, p95, p99 = (float(v) for v in re.findall(r"([\d.]+) ms", row)[:3])
    assert 25.0 < p50 < p95 <= 50.0  # 10 fast + 30 in (25, 50] ms from the two workers
    assert p99 == pytest.approx(895.0)  # the 2 slow 503s: (0.5, 1] s bucket, no min/max recorded
    assert re.search(r"app\.jobs\s+sum\s+42\b", report)  # latest per series (4 superseded), summed
    assert "instances: 2" in report


def test_quantile_interpolates_inside_the_bucket() -> None:
    bounds = [0.1, 0.2, 0.5]
    buckets = [50, 40, 10, 0]
    assert quantile(bounds, buckets, 0.5) == pytest.approx(0.1)
    assert quantile(bounds, buckets, 0.95) == pytest.approx(0.35)
    assert quantile(bounds, buckets, 0.99) == pytest.approx(0.47)
    assert quantile(bounds, buckets, 0.99, low=0.01, high=0.3) == pytest.approx(0.29)  # bucket capped at max
    assert quantile(bounds, [0, 0, 0, 4], 0.5, high=2.0) == pytest.approx(1.25)  # +Inf bucket bounded by max
    assert quantile(bounds, [0, 0, 0, 0], 0.5) is None


def test_span_tree_orphans_and_odd_encodings(tmp_path: Path) -> None:
    lines = [
        _spans_line(
            _span("child", "0000000000000002", parent="0000000000000001", start=T0 + 1000),
            _span("grandchild", "0000000000000003", parent="0000000000000002", start=T0 + 2000,
                  attributes=[_kv("agentwatch.rag.documents", 3), _kv("ignored", "x")]),
        ),
        _spans_line(
            _span("root", "0000000000000001", ms=12.5, kind=2,
                  status={"code": 2, "message": "boom"}),
            _span("lost", "0000000000000009", parent="00000000000000ff", start=T0 + 3000,
                  kind="SPAN_KIND_CLIENT", unknownField={"x": 1}),
        ),
    ]
    (tmp_path / "traces.jsonl").write_text("\n".join(lines) + "\n")
    report = render(str(tmp_path))
    root, child, grandchild, lost = (_line_with(report, name + "  ") for name in ("root", "child", "grandchild", "lost"))
    assert _indent(root, "root") < _indent(child, "child") < _indent(grandchild, "grandchild")
    assert _indent(lost, "lost") == _indent(root, "root")
    assert "parent span not recorded" in lost and "CLIENT" in lost
    assert "ERROR boom" in root and "12.5 ms" in root and "SERVER" in root
    assert "agentwatch.rag.documents=3" in grandchild and "ignored" not in grandchild
    assert "trace " + "ab" * 16 in report


def test_corrupt_last_line_is_skipped_with_a_note(tmp_path: Path) -> None:
    good = _spans_line(_span("kept", "0000000000000001"))
    (tmp_path / "traces.jsonl").write_text(good + "\n" + good[: len(good) // 2])  # writer killed mid-line
    (tmp_path / "logs.jsonl").write_bytes(b'\xff\xfe not json\n[1, 2]\n{"resourceLogs": 7}\n')
    report = render(str(tmp_path))
    assert "kept" in report
    assert "3 unreadable lines skipped (traces.jsonl: 1, logs.jsonl: 2)" in report
    assert "no logs recorded (logs.jsonl is empty)" in report
    assert "no metrics recorded (no metrics.jsonl)" in report


def test_rotated_file_is_read_first(tmp_path: Path) -> None:
    (tmp_path / "traces.jsonl.1").write_text(_spans_line(_span("old", "0000000000000001", trace="01" * 16)) + "\n")
    (tmp_path / "traces.jsonl").write_text(
        _spans_line(_span("new", "0000000000000002", trace="02" * 16, start=T0 + 10**9)) + "\n"
    )
    report = render(str(tmp_path), traces=5)
    assert "2 spans in 2 traces" in report
    assert report.index("old  ") < report.index("new  ")
    only_last = render(str(tmp_path), traces=1)
    assert "new  " in only_last and "old  " not in only_last and "last 1 of 2 traces" in only_last


def test_logs_are_escaped_and_bounded(tmp_path: Path) -> None:
    records = [
        {"timeUnixNano": str(T0 + i), "severityNumber": 9, "body": {"stringValue": f"line {i}"}}
        for i in range(30)
    ]
    records.append({"observedTimeUnixNano": str(T0 + 100), "severityNumber": 17,
                    "body": {"stringValue": "evil \x1b[2J clear\nsecond line"}, "traceId": "cd" * 16})
    records.append({"timeUnixNano": str(T0 + 200), "body": {"kvlistValue": {"values": [_kv("k", "v")]}}})
    line = json.dumps({"resourceLogs": [{"resource": _resource(), "scopeLogs": [
        {"scope": {"name": "app.log"}, "logRecords": records}]}]})
    (tmp_path / "logs.jsonl").write_text(line + "\n")
    report = render(str(tmp_path), logs=3)
    assert "\x1b" not in report
    assert "last 3 of 32" in report
    assert "line 29" in report and "line 28" not in report
    evil = _line_with(report, "evil")
    assert "ERROR" in evil and "cdcdcdcd" in evil and "\\x1b[2J" in evil and "\\nsecond line" in evil
    assert '{"k": "v"}' in report


def test_empty_and_missing(tmp_path: Path) -> None:
    report = render(str(tmp_path))
    assert "nothing recorded yet" in report
    for name in ("traces.jsonl", "metrics.jsonl", "logs.jsonl"):
        (tmp_path / name).write_text("")
    report = render(str(tmp_path))
    assert "no traces recorded (traces.jsonl is empty)" in report
    assert "no metrics recorded (metrics.jsonl is empty)" in report
    assert "no logs recorded (logs.jsonl is empty)" in report
    with pytest.raises(FileNotFoundError, match="no telemetry directory"):
        render(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "content",
    [
        '{"resourceSpans": 5}',
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 3, "startTimeUnixNano": "x", "status": []}]}]}]}',
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "q83v", "spanId": null, "kind": 99}]}]}]}',
        "null",
        '"text"',
        '{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "http.server.request.duration", '
        '"histogram": {"dataPoints": [{"count": "NaN", "bucketCounts": ["1"], "explicitBounds": [1, 2]}]}}]}]}]}',
        '{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": {"dataPoints": '
        '[{"asDouble": "Infinity"}, {"asInt": "zz"}]}}]}]}]}',
    ],
)
def test_hostile_input_never_raises(tmp_path: Path, content: str) -> None:
    name = "metrics.jsonl" if "resourceMetrics" in content else "traces.jsonl"
    (tmp_path / name).write_text(content + "\n")
    assert "agentwatch report" in render(str(tmp_path), color=True)


def test_the_command_defaults_to_agentwatch_file_dir_and_survives_a_closed_pipe(tmp_path: Path) -> None:
    import os
    import subprocess

    from _service import BIN

    lines = [_spans_line(_span(f"root{index}", f"{index + 1:016x}", trace=f"{index + 1:032x}")) for index in range(3000)]
    (tmp_path / "traces.jsonl").write_text("\n".join(lines) + "\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))},
           "AGENTWATCH_FILE_DIR": str(tmp_path)}
    done = subprocess.run([str(BIN / "agentwatch"), "report", "--traces", "3000"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "root2999" in done.stdout and len(done.stdout) > 256 * 1024  # more than a pipe holds
    # `agentwatch report | head -1`: the reader closes the pipe early; no traceback
    piped = subprocess.run(f"'{BIN / 'agentwatch'}' report --traces 3000 | head -1", shell=True, env=env,
                           capture_output=True, text=True, timeout=60)
    assert "Traceback" not in piped.stderr and "BrokenPipeError" not in piped.stderr, piped.stderr


# --------------------------------------------------------------------------- waterfalls, histograms, width, colour


def _pipeline_run(directory: Path) -> None:
    """Two requests through the real SDK and file exporters: one that fails in its second step."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(str(directory))))
    reader = PeriodicExportingMetricReader(OTLPJsonFileMetricExporter(str(directory)), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer = tracer_provider.get_tracer("test")
    duration = meter_provider.get_meter("test").create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=BOUNDS)
    try:
        for request_id, fail in (("req-ok-1", False), ("req-fail-2", True)):
            with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER, attributes={
                "http.route": "/chat", "http.response.status_code": 500 if fail else 200,
                "agentwatch.request.id": request_id, "agentwatch.request.gen_ai.cost": 0.25,
                "agentwatch.request.gen_ai.calls": 1,
            }) as server:
                with tracer.start_as_current_span("first step"):
                    time.sleep(0.02)
                with tracer.start_as_current_span("second step") as step:
                    time.sleep(0.02)
                    if fail:
                        step.set_status(Status(StatusCode.ERROR, "the model said no"))
                if fail:
                    server.set_status(Status(StatusCode.ERROR))
        for value in [0.003] * 3 + [0.03] * 6 + [0.7]:
            duration.record(value, {"http.route": "/chat", "http.response.status_code": 200})
        meter_provider.force_flush()
    finally:
        meter_provider.shutdown()
        tracer_provider.shutdown()


def _bar_cells(line: str) -> tuple[int, int]:
    """(first filled cell, filled cells) of a span line's waterfall bar (19 cells after 4 spaces at width 100)."""
    cells = line[4:4 + 19]
    filled = [i for i, cell in enumerate(cells) if cell != " "]
    return filled[0], len(filled)


def test_waterfalls_histograms_costs_and_errors(tmp_path: Path) -> None:
    _pipeline_run(tmp_path)
    report = render(str(tmp_path), width=100)
    server = _line_with(report, "POST /chat  SERVER")
    first, second = _line_with(report, "├─ first step"), _line_with(report, "└─ second step")
    # bars: the server span fills its trace's 19 cells (a fifth of 100 columns); the steps follow each
    # other, about half each
    assert _bar_cells(server) == (0, 19)
    start_1, cells_1 = _bar_cells(first)
    start_2, cells_2 = _bar_cells(second)
    assert start_1 <= 1 and 8 <= cells_1 <= 11 and 8 <= start_2 <= 11 and 8 <= cells_2 <= 11
    assert "3 spans  2 errors  request req-fail-2" in _line_with(render(str(tmp_path)), "request req-fail-2")

    histogram = report[report.index("Latency per route"):].split("\n\n")[0].splitlines()
    assert histogram[1].split() == ["/chat", "10", "requests"]
    buckets = [(line.split()[1] + " " + line.split()[2], int(line.split()[-1])) for line in histogram[2:]]
    assert buckets[0] == ("5 ms", 3) and buckets[-1] == ("1 s", 1) and sum(n for _, n in buckets) == 10
    assert _line_with(report, "≤ 50 ms").count("█") == 40  # the fullest bucket fills the bar

    assert re.search(r"/chat\s+2\s+2\s+0\.5 USD\s+0\.25 USD", report)  # cost per route: 2 requests, 2 calls
    errors = report[report.index("Errors ("):].split("\n\n")[0]
    assert "1 trace with error spans" in errors
    lines = errors.splitlines()
    row = lines.index(_line_with(errors, "req-fail-2"))
    assert "/chat" in lines[row] and "500" in lines[row]
    assert lines[row + 1].strip() == "second step: the model said no (+1 more)"  # the likely cause, then the rest
    assert "req-ok-1" not in errors


def test_lines_fit_the_width(tmp_path: Path) -> None:
    _pipeline_run(tmp_path)
    from agentwatch.report._text import display_width, fit

    for width in (40, 72, 100):
        for color in (False, True):
            lines = render(str(tmp_path), width=width, color=color).splitlines()
            assert max(display_width(line) for line in lines) <= width
    assert max(len(line) for line in render(str(tmp_path)).splitlines()) > 100  # 0: no limit
    assert fit("日本語テキスト", 6) == "日本…" and display_width(fit("日本語テキスト", 6)) == 5
    assert fit("\x1b[31mred text\x1b[0m", 5) == "\x1b[31mred …\x1b[0m"


def _run_report(directory: Path, env: dict[str, str], *args: str, tty_columns: int = 0) -> str:
    """``agentwatch report`` as a subprocess, its stdout a pipe or (``tty_columns``) a terminal that wide."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    from _service import BIN

    command = [str(BIN / "agentwatch"), "report", str(directory), *args]
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "AGENTWATCH_")) and k not in ("NO_COLOR", "COLUMNS", "TERM")}
    if not tty_columns:
        done = subprocess.run(command, env={**base, **env}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, tty_columns, 0, 0))
    attributes = termios.tcgetattr(follower)
    attributes[1] &= ~termios.OPOST  # no \n -> \r\n
    termios.tcsetattr(follower, termios.TCSANOW, attributes)
    process = subprocess.Popen(command, env={**base, "TERM": "xterm", **env}, stdout=follower,
                               stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_the_command_honours_no_color_columns_and_the_terminal(tmp_path: Path) -> None:
    from agentwatch.report._text import display_width

    _pipeline_run(tmp_path)

    def widest(text: str) -> int:
        return max(display_width(line) for line in text.splitlines())

    # into a pipe: no colour, whole lines; COLUMNS and --width cut them; --color forces colour
    piped = _run_report(tmp_path, {})
    assert "\x1b[" not in piped and widest(piped) > 100
    assert widest(_run_report(tmp_path, {"COLUMNS": "64"})) <= 64
    assert widest(_run_report(tmp_path, {"COLUMNS": "64"}, "--width", "50")) <= 50
    assert "\x1b[31m" in _run_report(tmp_path, {"NO_COLOR": "1"}, "--color")
    # on a terminal: its width and colours, unless NO_COLOR has a (any) non-empty value or TERM=dumb
    on_tty = _run_report(tmp_path, {}, tty_columns=70)
    assert "\x1b[31m" in on_tty and widest(on_tty) <= 70
    assert "\x1b[" in _run_report(tmp_path, {"NO_COLOR": ""}, tty_columns=70)
    for env in ({"NO_COLOR": "1"}, {"NO_COLOR": "false"}, {"TERM": "dumb"}):
        assert "\x1b[" not in _run_report(tmp_path, env, tty_columns=70), env
    assert "\x1b[" not in _run_report(tmp_path, {}, "--no-color", tty_columns=70)
    assert widest(_run_report(tmp_path, {"COLUMNS": "90"}, tty_columns=70)) > 70  # COLUMNS wins, as for ls


def test_the_command_writes_the_html_page(tmp_path: Path) -> None:
    _pipeline_run(tmp_path)
    page = tmp_path / "out" / "report.html"
    page.parent.mkdir()
    output = _run_report(tmp_path, {}, "--html", str(page))
    assert output.strip() == f"agentwatch report: wrote {page}"
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "req-fail-2" in text and "second step" in text
    import subprocess

    from _service import BIN

    done = subprocess.run([str(BIN / "agentwatch"), "report", str(tmp_path), "--html", str(tmp_path / "no" / "x.html")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot write" in done.stderr and "Traceback" not in done.stderr


def test_a_deep_or_huge_trace_stays_bounded(tmp_path: Path) -> None:
    """A corrupt or hostile file: one trace whose spans nest 3000 deep. No recursion error, no quadratic
    output, and the spans beyond what is shown are counted."""
    spans = [_span(f"s{index}", f"{index + 1:016x}", parent=f"{index:016x}" if index else "", start=T0 + index)
             for index in range(3000)]
    (tmp_path / "traces.jsonl").write_text(_spans_line(*spans) + "\n")
    report = render(str(tmp_path), width=120)
    assert "3000 spans" in report and "… and 2700 more spans" in report
    assert len(report) < 300 * 200
    from agentwatch.report import render_html

    page = render_html(str(tmp_path))
    assert "… and 2700 more spans" in page and len(page) < 1_000_000


def test_the_terminal_lists_the_last_ten_error_traces(tmp_path: Path) -> None:
    lines = [_spans_line(_span(f"fail{index}", f"{index + 1:016x}", trace=f"{index + 1:032x}", start=T0 + index,
                               kind=2, status={"code": 2, "message": f"boom {index}"},
                               attributes=[_kv("agentwatch.request.id", f"req-{index}")]))
             for index in range(25)]
    (tmp_path / "traces.jsonl").write_text("\n".join(lines) + "\n")
    report = render(str(tmp_path))
    errors = report[report.index("Errors ("):].split("\n\n")[0]
    assert errors.splitlines()[0] == "Errors (25 traces with error spans, last 10)"
    assert "req-24" in errors and "req-15" in errors and "req-14" not in errors
    assert "fail24: boom 24" in errors
    from agentwatch.report import render_html

    page = render_html(str(tmp_path), traces=5)
    assert page.count('class="rid"') == 25 and page.count('<a class="rid"') == 5  # links only to shown waterfalls
