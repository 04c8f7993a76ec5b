"""The web layer's metrics are the ones listed in the catalogue (agentwatch/semconv.py WEB_METRICS),
and docs/telemetry.md shows that catalogue."""

from __future__ import annotations

import re
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum

from agentwatch import catalogue_md, semconv
from agentwatch.web import telemetry

_KIND = {Gauge: "gauge", Histogram: "histogram", Sum: "counter"}
TELEMETRY_DOC = Path(__file__).resolve().parents[1] / "docs" / "telemetry.md"


def test_docs_table_is_generated_from_the_catalogue():
    match = re.search(r"<!-- web-catalogue:start[^>]*-->\n(.*?)<!-- web-catalogue:end -->", TELEMETRY_DOC.read_text(), re.S)
    assert match, "web-catalogue markers missing from docs/telemetry.md"
    assert match.group(1).strip() == catalogue_md.web_markdown(), "regenerate: python -m agentwatch._docs"


def test_emitted_web_metrics_match_the_catalogue():
    reader = InMemoryMetricReader()
    telemetry.use_meter_provider(MeterProvider(metric_readers=[reader]))
    try:
        telemetry.record_check("sqlite", "degraded", 0.003)
        telemetry.record_error("ValueError", "/chat", "POST")
        emitted = {
            metric.name: metric
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        }
    finally:
        telemetry.use_meter_provider(None)
    assert set(emitted) == set(semconv.WEB_METRICS_BY_NAME)
    for name, metric in emitted.items():
        entry = semconv.WEB_METRICS_BY_NAME[name]
        assert metric.unit == entry.unit
        assert _KIND[type(metric.data)] == entry.instrument
        for point in metric.data.data_points:
            assert set(point.attributes) <= set(entry.attributes), (name, point.attributes)
            if entry.buckets:
                assert tuple(point.explicit_bounds) == entry.buckets
