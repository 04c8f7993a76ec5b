"""Every way out of the process is scrubbed: each exporter, each place a secret can sit.

One scenario puts a different secret in each place (span name, attribute, event, exception
message and stack trace, status message, link attribute, resource attribute, log body and
attribute, metric attribute) and exports it through the real exporters: console (captured),
``otlp_json_file`` (tmp dir), OTLP/HTTP (the local receiver), the Prometheus scrape, and the
whole configurator (``agentwatch.configure()``) in a subprocess. No secret may appear in any
exported byte; the redaction marks must.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, Status, StatusCode

import _pii
from _service import clean_env, free_port
from agentwatch.distro import exporters
from agentwatch.distro.prometheus import create_prometheus_reader
from agentwatch.distro.scrub import Scrubber
from agentwatch.distro.settings import load_settings, reset_settings
from otlp_receiver import OTLPReceiver

_rnd = random.Random(20261123)
_keys = _pii.secrets(_rnd)
SECRETS = {
    "span_name": "alice.name@example.com",
    "span_attribute": _keys["google_api_key"],
    "header": _pii.body(_rnd, 32),
    "event": _pii.card(_rnd),
    "exception": "hunter2-" + _pii.body(_rnd, 8),
    "exception_email": "bob.smith@example.org",
    "link": "203.0.113.91",
    "resource": "carol@example.net",
    "resource_token": _pii.body(_rnd, 20),
    "log_body": "+44 20 7946 0958",
    "log_body_key": _keys["openai_api_key"],
    "log_attribute": "198.51.100.23",
    "log_attribute_key": _pii.body(_rnd, 24),
    "metric_attribute": "dave@example.com",
    "metric_ip": "2001:db8:85a3::8a2e:370:7334",
}
MARKS = ["[REDACTED:email]", "[REDACTED:google_api_key]", "[REDACTED:credit_card]", "[REDACTED:password]", "[REDACTED:ipv4]"]


def resource() -> Resource:
    return Resource({"service.name": "paths", "owner": f"team {SECRETS['resource']}", "deploy.token": SECRETS["resource_token"]})


def emit_spans(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("paths")
    other = tracer.start_span("other")
    other.end()
    with tracer.start_as_current_span(
        f"GET /users/{SECRETS['span_name']}",
        links=[Link(other.get_span_context(), {"peer": f"from {SECRETS['link']}"})],
    ) as span:
        span.set_attribute("url.full", f"https://generativelanguage.googleapis.com/v1?key={SECRETS['span_attribute']}")
        span.set_attribute("http.request.header.authorization", (f"Bearer {SECRETS['header']}",))
        span.set_attribute("gen_ai.usage.input_tokens", 812)
        span.add_event("payment", {"detail": f"card {SECRETS['event']} declined"})
        try:
            raise ValueError(f"db password={SECRETS['exception']} rejected for {SECRETS['exception_email']}")
        except ValueError as error:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))


def emit_logs(provider: LoggerProvider) -> None:
    provider.get_logger("paths").emit(
        LogRecord(
            body=f"customer called from {SECRETS['log_body']} with key {SECRETS['log_body_key']}",
            attributes={"client.address": SECRETS["log_attribute"], "api_key": SECRETS["log_attribute_key"]},
        )
    )


def emit_metrics(provider: MeterProvider) -> None:
    meter = provider.get_meter("paths")
    meter.create_counter("agent.requests").add(1, {"user": SECRETS["metric_attribute"], "route": "/chat"})
    meter.create_histogram("agent.latency", unit="s").record(0.25, {"client": SECRETS["metric_ip"]})


def assert_clean(blob: str | bytes, what: str, marks=MARKS) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    leaked = {name: value for name, value in SECRETS.items() if value in text}
    assert not leaked, f"{what} leaked {leaked}"
    for mark in marks:
        assert mark in text, f"{what}: {mark} missing"


@pytest.fixture(autouse=True)
def _forget_settings_afterwards():
    """The tests below change the environment and re-read settings; leave no cached copy behind."""
    yield
    reset_settings()


def _settings(monkeypatch, **env: str):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    return load_settings({**env, "AGENTWATCH_ENDPOINT_CHECK": "false"})


def _pipeline(settings, export_interval_ms: float = 60_000):
    tracer_provider = TracerProvider(resource=resource())
    for exporter in exporters.build_exporters("traces", settings, {}):
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    logger_provider = LoggerProvider(resource=resource())
    for exporter in exporters.build_exporters("logs", settings, {}):
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    readers = exporters.build_metric_readers(settings, {}, export_interval_ms=export_interval_ms)
    meter_provider = MeterProvider(resource=resource(), metric_readers=readers)
    return tracer_provider, logger_provider, meter_provider


def _run(providers) -> None:
    tracer_provider, logger_provider, meter_provider = providers
    emit_spans(tracer_provider)
    emit_logs(logger_provider)
    emit_metrics(meter_provider)
    for provider in providers:
        provider.force_flush()
    for provider in providers:
        provider.shutdown()


def test_console_exporters(monkeypatch):
    settings = _settings(
        monkeypatch, OTEL_TRACES_EXPORTER="console", OTEL_LOGS_EXPORTER="console", OTEL_METRICS_EXPORTER="console"
    )
    before = len(exporters.created())
    providers = _pipeline(settings)
    guards = exporters.created()[before:]
    assert sorted(type(g).__name__ for g in guards) == ["GuardedLogExporter", "GuardedMetricExporter", "GuardedSpanExporter"]
    stream = io.StringIO()  # the console exporters' stream (their default is sys.stdout as it was at import)
    for guard in guards:
        guard.inner.out = stream
    _run(providers)
    out = stream.getvalue()
    assert "gen_ai.usage.input_tokens" in out and "812" in out
    assert_clean(out, "console exporters")


def test_otlp_json_file_exporters(monkeypatch, tmp_path):
    settings = _settings(
        monkeypatch,
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_LOGS_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="otlp_json_file",
        AGENTWATCH_FILE_DIR=str(tmp_path),
    )
    _run(_pipeline(settings))
    files = {name: (tmp_path / name).read_text() for name in ("traces.jsonl", "metrics.jsonl", "logs.jsonl")}
    assert_clean("".join(files.values()), "otlp_json_file")
    span = next(
        s
        for line in files["traces.jsonl"].splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
        if s["name"].startswith("GET")
    )
    assert span["name"] == "GET /users/[REDACTED:email]"
    stacktrace = next(a for e in span["events"] for a in e["attributes"] if a["key"] == "exception.stacktrace")
    assert "test_scrubbing_paths.py" in stacktrace["value"]["stringValue"]  # paths and line numbers survive
    assert 'line ' in stacktrace["value"]["stringValue"]


def test_otlp_http_exporters(monkeypatch):
    with OTLPReceiver(protocol="http") as rx:
        settings = _settings(monkeypatch, **rx.env(), OTEL_TRACES_EXPORTER="otlp", OTEL_LOGS_EXPORTER="otlp", OTEL_METRICS_EXPORTER="otlp")
        _run(_pipeline(settings))
        assert rx.wait_for(lambda r: r.spans() and r.logs() and r.metrics(), timeout=10)
        blob = b"".join(request.SerializeToString() for signal in ("traces", "logs", "metrics") for request in rx.raw(signal))
        assert_clean(blob, "OTLP/HTTP")
        (span,) = rx.spans(name="GET /users/[REDACTED:email]")
        assert span["attributes"]["gen_ai.usage.input_tokens"] == 812
        assert span["attributes"]["http.request.header.authorization"] == ["[REDACTED:authorization]"]
        assert span["status_message"].startswith("db password=[REDACTED:password]")
        assert span["resource"]["deploy.token"] == "[REDACTED:token]"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_prometheus_scrape():
    port = free_port()
    reader = create_prometheus_reader("127.0.0.1", port, scrubber=Scrubber())
    provider = MeterProvider(resource=resource(), metric_readers=[reader])
    try:
        emit_metrics(provider)
        text = _scrape(port)
    finally:
        provider.shutdown()
    assert 'user="[REDACTED:email]"' in text and 'client="[REDACTED:ipv6]"' in text
    assert 'owner="team [REDACTED:email]"' in text  # target_info carries the resource
    assert_clean(text, "Prometheus scrape", marks=["[REDACTED:email]", "[REDACTED:ipv6]", "[REDACTED:token]"])


def test_prometheus_scrape_merges_series_that_became_equal():
    port = free_port()
    provider = MeterProvider(metric_readers=[create_prometheus_reader("127.0.0.1", port, scrubber=Scrubber())])
    try:
        counter = provider.get_meter("paths").create_counter("agent.logins")
        counter.add(2, {"user": "alice@example.com"})
        counter.add(3, {"user": "bob@example.com"})
        text = _scrape(port)
    finally:
        provider.shutdown()
    series = [line for line in text.splitlines() if line.startswith("agent_logins_total{")]
    assert len(series) == 1 and series[0].endswith(" 5.0"), series


def test_unscrubbed_pull_reader_entry_points_are_wrapped():
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = exporters.scrub_pull_reader(InMemoryMetricReader(), Scrubber())
    provider = MeterProvider(resource=resource(), metric_readers=[reader])
    emit_metrics(provider)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert_clean(data.to_json(), "pull reader", marks=["[REDACTED:email]", "[REDACTED:ipv6]"])


def test_scrubbing_off_exports_as_is(monkeypatch, tmp_path):
    settings = _settings(
        monkeypatch, OTEL_TRACES_EXPORTER="otlp_json_file", OTEL_LOGS_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
        AGENTWATCH_FILE_DIR=str(tmp_path), AGENTWATCH_SCRUB="false",
    )
    _run(_pipeline(settings))
    assert SECRETS["span_name"] in (tmp_path / "traces.jsonl").read_text()


def test_exporter_gets_the_original_when_clean_and_never_an_exception(monkeypatch, lenient):
    """The guard hands clean spans on untouched, and a scrubber fault never reaches the SDK."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from agentwatch.distro.scrub import spans as scrub_spans

    seen = []

    class Keep(SpanExporter):
        def export(self, spans):
            seen.extend(spans)
            return SpanExportResult.SUCCESS

    def broken(scrubber, spans):
        raise RuntimeError("scrubber bug")

    monkeypatch.setattr(scrub_spans, "scrub_batch", broken)  # the batch path and the span-by-span one
    provider = TracerProvider(resource=Resource({"service.name": "x"}))
    provider.add_span_processor(SimpleSpanProcessor(exporters.GuardedSpanExporter("keep", Keep(), None, Scrubber())))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("clean"):
        pass
    with tracer.start_as_current_span("mail alice@example.com"):
        pass
    provider.shutdown()
    assert [s.name for s in seen] == ["clean", "mail [REDACTED:email]"]  # the per-span fallback still scrubs


SCRIPT = textwrap.dedent(
    """
    import logging, sys
    sys.path.insert(0, {tests!r})
    from test_scrubbing_paths import SECRETS, emit_spans, emit_metrics
    import agentwatch
    agentwatch.configure()
    from opentelemetry import metrics, trace

    emit_spans(trace.get_tracer_provider())
    emit_metrics(metrics.get_meter_provider())
    log = logging.getLogger("app")
    log.warning("customer called from %s with key %s", SECRETS["log_body"], SECRETS["log_body_key"])
    try:
        raise RuntimeError("token=" + SECRETS["log_attribute_key"] + " from " + SECRETS["log_attribute"])
    except RuntimeError:
        log.exception("upstream failed")
    """
)


def test_configure_from_code_end_to_end(tmp_path):
    """The real configurator wires the scrubber: files and the Prometheus scrape are clean."""
    out = tmp_path / "telemetry"
    port = free_port()
    env = clean_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_LOGS_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="otlp_json_file,prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        AGENTWATCH_FILE_DIR=str(out),
        AGENTWATCH_ENDPOINT_CHECK="false",
        OTEL_SERVICE_NAME="scrubbed",
        OTEL_RESOURCE_ATTRIBUTES=f"owner=team%20{SECRETS['resource']},deploy.token={SECRETS['resource_token']}",
    )
    script = tmp_path / "app.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)) + f"\nimport urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())\n")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr.replace("Traceback (most recent call last)", ""), proc.stderr
    files = "".join(p.read_text() for p in out.glob("*.jsonl"))
    assert "upstream failed" in files and "agent_requests" not in files and "agent.requests" in files
    assert_clean(files, "configure() -> otlp_json_file", marks=["[REDACTED:email]", "[REDACTED:google_api_key]", "[REDACTED:phone]", "[REDACTED:openai_api_key]", "[REDACTED:token]", "[REDACTED:ipv4]"])
    assert_clean(proc.stdout, "configure() -> Prometheus", marks=["[REDACTED:email]", "[REDACTED:ipv6]"])
    assert not {name for name, value in SECRETS.items() if value in proc.stderr}, proc.stderr
