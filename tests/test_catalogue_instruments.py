"""Every instrumentor builds its instruments from the catalogue (agentwatch.semconv.create_instruments)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.metrics import Observation

from agentwatch import semconv

CATALOGUES = {
    "agent": semconv.METRICS,
    "genai": semconv.GENAI_METRICS,
    "vectordb": semconv.VECTORDB_METRICS,
    "web": semconv.WEB_METRICS,
    "caches-queues": semconv.CACHE_QUEUE_METRICS,
    "resilience": semconv.RESILIENCE_METRICS,
    "mcp": semconv.MCP_METRICS,
}


def _exported(reader: InMemoryMetricReader) -> dict:
    data = reader.get_metrics_data()
    return {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


@pytest.mark.parametrize("catalogue", sorted(CATALOGUES))
def test_instruments_match_their_catalogue_entries(catalogue):
    metrics = CATALOGUES[catalogue]
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    built = semconv.create_instruments(meter, metrics, gauge_callbacks=[lambda options: [Observation(3)]])
    assert set(built) == {m.name for m in metrics}
    for metric in metrics:
        if metric.instrument == "counter":
            built[metric.name].add(1)
        elif metric.instrument == "histogram":
            built[metric.name].record(1)
    exported = _exported(reader)
    for metric in metrics:
        emitted = exported[metric.name]
        assert (emitted.unit, emitted.description) == (metric.unit, metric.description)
        if metric.buckets is not None:
            assert tuple(emitted.data.data_points[0].explicit_bounds) == tuple(metric.buckets)


def test_a_gauge_without_callbacks_is_synchronous():
    (status,) = [m for m in semconv.WEB_METRICS if m.instrument == "gauge"]
    reader = InMemoryMetricReader()
    status.create(MeterProvider(metric_readers=[reader]).get_meter("t")).set(0.5)
    assert _exported(reader)[status.name].data.data_points[0].value == 0.5


def test_gemini_instruments_carry_the_catalogue_descriptions():
    from agentwatch.instrumentors.gemini.telemetry import Telemetry

    reader = InMemoryMetricReader()
    tel = Telemetry(meter_provider=MeterProvider(metric_readers=[reader]))
    tel.duration.record(0.1)
    tel.tokens.record(5)
    tel.cost.add(0.01)
    for name, metric in _exported(reader).items():
        assert metric.description == semconv.GENAI_METRICS_BY_NAME[name].description


def test_reading_the_catalogue_imports_no_opentelemetry():
    code = "import sys, agentwatch.semconv; print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
