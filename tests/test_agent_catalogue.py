"""What the agent instrumentors emit is exactly what ``agentwatch/semconv.py`` documents (and docs/telemetry.md shows)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _service import json_attrs
from agentwatch import semconv
from agentwatch import catalogue_md
from test_agent_service import run  # noqa: F401 - the subprocess run, shared with test_agent_service

TELEMETRY_DOC = Path(__file__).resolve().parents[1] / "docs" / "telemetry.md"
_KIND = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT"}


def test_docs_tables_are_generated_from_the_catalogue():
    text = TELEMETRY_DOC.read_text()
    match = re.search(r"<!-- agent-catalogue:start[^>]*-->\n(.*?)<!-- agent-catalogue:end -->", text, re.S)
    assert match, "agent-catalogue markers missing from docs/telemetry.md"
    assert match.group(1).strip() == catalogue_md.markdown(), "regenerate: python -m agentwatch._docs"


def test_catalogue_metrics_are_bounded():
    for metric in semconv.METRICS:
        assert metric.instrument in ("counter", "histogram")
        assert (metric.buckets is not None) == (metric.instrument == "histogram"), metric.name
        assert metric.name.startswith("agentwatch.") and metric.role
        assert not {"gen_ai.retrieval.query.text", "gen_ai.retrieval.documents"} & set(metric.attributes)


@pytest.mark.slow
def test_emitted_metrics_match_the_catalogue(run):  # noqa: F811
    _, _, metrics = run
    assert set(metrics) == set(semconv.METRICS_BY_NAME), "every catalogued metric is emitted by the test app, nothing else"
    for name, metric in metrics.items():
        entry = semconv.METRICS_BY_NAME[name]
        assert metric.get("unit", "") == entry.unit, name
        if entry.instrument == "counter":
            assert metric["sum"]["isMonotonic"] is True, name
            points = metric["sum"]["dataPoints"]
        else:
            points = metric["histogram"]["dataPoints"]
            for point in points:
                assert [float(b) for b in point["explicitBounds"]] == [float(b) for b in entry.buckets], name
        for point in points:
            assert set(json_attrs(point.get("attributes"))) <= set(entry.attributes), (name, point.get("attributes"))


@pytest.mark.slow
def test_emitted_spans_match_the_catalogue(run):  # noqa: F811
    _, spans, _ = run
    patterns = {
        span.role: (re.compile("^" + re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(span.name)) + "$"), span)
        for span in semconv.SPANS
    }
    seen = set()
    for span in (s for s in spans if s["scope"] == "agentwatch.instrumentors"):
        role, (pattern, entry) = next((r, p) for r, p in patterns.items() if p[0].match(span["name"]))
        seen.add(role)
        assert _KIND[span["kind"]] == entry.kind, span["name"]
        assert set(span["attrs"]) <= set(entry.attributes) | set(entry.content_attributes), (span["name"], span["attrs"])
        for event in span.get("events", []):
            if event["name"] == "exception":
                continue
            assert event["name"] in entry.events
            assert set(json_attrs(event.get("attributes"))) <= set(entry.event_attributes) | set(entry.content_attributes)
    assert seen == {"intent", "rag", "planner", "critic"}
