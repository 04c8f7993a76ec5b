"""The Prometheus names of every metric agentwatch emits (a test helper, not a test file).

Built from what the code creates, not from a hand-kept list: the agent catalogue
(agentwatch/semconv.py), the Gemini instrumentor's instruments, the web layer's health
and error metrics, and the stable HTTP server metrics of the FastAPI instrumentation;
each instrument gets one measurement through the real OpenTelemetry Prometheus exporter,
and the exposition text is parsed for family and sample names.
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1)
def exposed_samples() -> frozenset[str]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.metrics import Counter, Histogram
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    from agentwatch import semconv
    from agentwatch.instrumentors.gemini.telemetry import Telemetry as GeminiTelemetry
    from agentwatch.web import telemetry

    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry) if "registry" in PrometheusMetricReader.__init__.__code__.co_varnames else None
    if reader is None:  # pragma: no cover - older exporter: global registry
        from prometheus_client import REGISTRY as registry  # noqa: N811

        reader = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("exposed-names")
    try:
        for metric in semconv.METRICS:
            create = meter.create_counter if metric.instrument == "counter" else meter.create_histogram
            create(metric.name, unit=metric.unit).record(1) if metric.instrument != "counter" else create(metric.name, unit=metric.unit).add(1)
        for metric in getattr(semconv, "GENAI_METRICS", ()):  # the Gemini catalogue, where there is one
            kind = getattr(metric, "instrument", "histogram")
            if kind == "counter":
                meter.create_counter(metric.name, unit=metric.unit).add(1)
            elif kind == "histogram":
                meter.create_histogram(metric.name, unit=metric.unit).record(1)
        for metric in getattr(semconv, "RESILIENCE_METRICS", ()):  # retries, circuit breakers, rate limits
            if metric.instrument == "counter":
                meter.create_counter(metric.name, unit=metric.unit).add(1)
            elif metric.instrument == "histogram":
                meter.create_histogram(metric.name, unit=metric.unit).record(1)
            else:
                meter.create_gauge(metric.name, unit=metric.unit).set(1)
        # ... and the instruments the Gemini instrumentor really creates (every one of them).
        tel = GeminiTelemetry(meter_provider=provider)
        for instrument in vars(tel).values():
            if isinstance(instrument, Histogram):
                instrument.record(1, {"gen_ai.request.model": "m"})
            elif isinstance(instrument, Counter):
                instrument.add(1, {"gen_ai.request.model": "m"})
        telemetry.use_meter_provider(provider)
        telemetry.record_check("db", "healthy", 0.01)
        telemetry.record_error("ValueError", "/x", "GET")
        # opentelemetry-instrumentation-fastapi with OTEL_SEMCONV_STABILITY_OPT_IN=http,database (the distro's default)
        meter.create_histogram("http.server.request.duration", unit="s").record(0.1)
        meter.create_up_down_counter("http.server.active_requests", unit="{request}").add(1)
        text = generate_latest(registry).decode()
    finally:
        telemetry.use_meter_provider(None)
        provider.shutdown()
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return frozenset(names)
