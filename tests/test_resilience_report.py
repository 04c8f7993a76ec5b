"""``agentwatch report``'s Resilience section from real telemetry files: the Gemini SDK retrying a 429
from examples/fake_gemini.py, a pybreaker breaker opening and refusing, 429s the app answered, written by
the real file exporters and read back by the report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google import genai
from google.genai import types
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agentwatch.distro.file_exporter import OTLPJsonFileMetricExporter, OTLPJsonFileSpanExporter
from agentwatch.instrumentors.breakers import AgentwatchPybreakerInstrumentor
from agentwatch.instrumentors.gemini import GeminiInstrumentor
from agentwatch.report import render


def _row(report: str, *cells: str) -> str:
    """The report line that has every one of ``cells`` (in order)."""
    pattern = r"\s+".join(re.escape(cell) for cell in cells)
    found = [line for line in report.splitlines() if re.search(pattern, line)]
    assert found, (cells, report)
    return found[0]


def test_the_report_shows_retries_429s_and_an_open_breaker(tmp_path: Path, fake_gemini) -> None:
    import pybreaker

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(str(tmp_path))))
    reader = PeriodicExportingMetricReader(OTLPJsonFileMetricExporter(str(tmp_path)), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentors = [GeminiInstrumentor(), AgentwatchPybreakerInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02, jitter=0.0)
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake_gemini.url, retry_options=retry))
        fake_gemini.server.api_key = None
        client.models.generate_content(model="gemini-2.5-flash", contents="report me #flaky-429-2")
        breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60, name="payments")
        for _ in range(3):
            with pytest.raises(pybreaker.CircuitBreakerError):
                breaker.call(lambda: 1 / 0)
        duration = meter_provider.get_meter("app").create_histogram("http.server.request.duration", unit="s")
        duration.record(0.01, {"http.route": "/chat", "http.response.status_code": 429, "http.request.method": "POST"})
        duration.record(0.01, {"http.route": "/chat", "http.response.status_code": 200, "http.request.method": "POST"})
        meter_provider.force_flush()
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()

    report = render(str(tmp_path))
    section = report[report.index("Resilience"):]
    assert _row(section, "gemini", "gemini-2.5-flash", "429", "2", "0")  # two retried, none gave up
    assert _row(section, "gemini-2.5-flash", "2", "2 s")  # two 429s, 2 s advised
    assert _row(section, "payments", "pybreaker", "open", "1", "1", "2")  # opened once, one change, two refused
    assert _row(section, "answered 429 on /chat", "1")


def test_no_resilience_section_without_its_signals(tmp_path: Path) -> None:
    meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
        OTLPJsonFileMetricExporter(str(tmp_path)), export_interval_millis=3_600_000)])
    meter_provider.get_meter("app").create_histogram("http.server.request.duration", unit="s").record(
        0.01, {"http.route": "/chat", "http.response.status_code": 200})
    meter_provider.shutdown()
    assert "Resilience" not in render(str(tmp_path))
