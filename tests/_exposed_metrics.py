"""The Prometheus names of every metric agentwatch emits (a test helper, not a test file).

Built from what the code creates, not from a hand-kept list: the agent catalogue
(agentwatch/semconv.py), the Gemini instrumentor's instruments, the MCP durations, the web layer's health
and error metrics, the chromadb catalogue (db.client.* from the database conventions,
which the sqlite3 instrumentation records too), the stable HTTP server and client metrics
of the FastAPI and httpx instrumentations, and every metric the real
opentelemetry-instrumentation-system-metrics instrumentor registers (its default config);
each instrument gets one measurement through the real OpenTelemetry Prometheus exporter,
and the exposition text is parsed for family and sample names.
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1)
def exposed_samples() -> frozenset[str]:
    """The sample names of the exposition (``http_server_request_duration_seconds_bucket``...)."""
    return frozenset(_parse()[0])


def exposed_labels(sample: str) -> frozenset[str]:
    """The label names a sample carries in the real exposition (only meaningful for instruments
    recorded by their real instrumentation, as the system metrics are)."""
    return frozenset(_parse()[1].get(sample, ()))


@functools.lru_cache(maxsize=1)
def _parse() -> tuple[set[str], dict[str, set[str]]]:
    names: set[str] = set()
    labels: dict[str, set[str]] = {}
    for line in _exposition().splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            names.add(name)
            labels.setdefault(name, set()).update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', line.partition("{")[2].rpartition("}")[0]))
    return names, labels


@functools.lru_cache(maxsize=1)
def _exposition() -> str:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.metrics import Counter, Histogram
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    from agentwatch import semconv
    from agentwatch.instrumentors.gemini.telemetry import Telemetry as GeminiTelemetry
    from agentwatch.web import telemetry
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

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
        for metric in semconv.MCP_METRICS:  # agentwatch_mcp: the GenAI/MCP conventions' four duration histograms
            meter.create_histogram(metric.name, unit=metric.unit).record(1)
        for metric in semconv.VECTORDB_METRICS:  # db.client.operation.duration, ... (sqlite3 records the first too)
            if metric.instrument == "histogram":
                meter.create_histogram(metric.name, unit=metric.unit).record(1)
        # opentelemetry-instrumentation-system-metrics as opentelemetry-instrument loads it.
        # A private instance, not the process-wide singleton (which another test may have instrumented);
        # _instrument registers every observable instrument of the default config on this provider.
        system_metrics = object.__new__(SystemMetricsInstrumentor)
        system_metrics.__init__()
        system_metrics._instrument(meter_provider=provider)
        from opentelemetry.metrics import Observation

        for metric in getattr(semconv, "CACHE_QUEUE_METRICS", ()):  # observed at collection (caches, queues)
            metric.create(meter, [lambda options, m=metric: [Observation(1, {key: "x" for key in m.attributes})]])
        telemetry.use_meter_provider(provider)
        telemetry.record_check("db", "healthy", 0.01)
        telemetry.record_error("ValueError", "/x", "GET")
        # opentelemetry-instrumentation-fastapi with OTEL_SEMCONV_STABILITY_OPT_IN=http,database (the distro's default)
        meter.create_histogram("http.server.request.duration", unit="s").record(0.1)
        meter.create_up_down_counter("http.server.active_requests", unit="{request}").add(1)
        # opentelemetry-instrumentation-httpx in the same mode (outgoing calls, Gemini's included)
        meter.create_histogram("http.client.request.duration", unit="s").record(0.1)
        text = generate_latest(registry).decode()
    finally:
        telemetry.use_meter_provider(None)
        provider.shutdown()
    return text
