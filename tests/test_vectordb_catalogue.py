"""The chromadb instrumentor's catalogue and packaging, checked where chromadb is NOT installed
(the main venv); what a real run emits is checked against the same catalogue in
tests/test_chromadb.py (``make test-chroma``)."""

from __future__ import annotations

import importlib.util
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from agentwatch import catalogue_md, semconv

TELEMETRY_DOC = Path(__file__).resolve().parents[1] / "docs" / "telemetry.md"


def test_docs_tables_are_generated_from_the_catalogue():
    match = re.search(r"<!-- vectordb-catalogue:start[^>]*-->\n(.*?)<!-- vectordb-catalogue:end -->", TELEMETRY_DOC.read_text(), re.S)
    assert match, "vectordb-catalogue markers missing from docs/telemetry.md"
    assert match.group(1).strip() == catalogue_md.vectordb_markdown(), (
        "regenerate: python -m agentwatch._docs"
    )


def test_catalogue_is_bounded_and_content_free():
    content = {"agentwatch.vectordb.query.text", "db.query.text"}
    for metric in semconv.VECTORDB_METRICS:
        assert metric.instrument in ("histogram", "gauge") and metric.role == "chromadb"
        assert (metric.buckets is not None) == (metric.instrument == "histogram"), metric.name
        assert metric.name.startswith(("db.client.", "agentwatch.vectordb.")), metric.name
        assert not content & set(metric.attributes), metric.name
        assert "db.response.returned_rows" not in metric.attributes
    assert semconv.VECTORDB_METRICS_BY_NAME["db.client.operation.duration"].buckets == (
        0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10,  # the database conventions' advice
    )
    (span,) = semconv.VECTORDB_SPANS
    assert span.kind == "CLIENT" and span.name == "{db.operation.name} {db.collection.name}"
    assert set(span.content_attributes) == {"agentwatch.vectordb.query.text"}
    ours = [a for a in (*span.attributes, *span.content_attributes) if a.startswith("agentwatch.")]
    assert ours and all(a.startswith("agentwatch.vectordb.") for a in ours)


def test_entry_points_are_registered():
    found = {e.name: e.value for e in entry_points(group="opentelemetry_instrumentor")}
    assert found["agentwatch_chromadb"] == "agentwatch.instrumentors.chromadb:AgentwatchChromaInstrumentor"
    # The `aiohttp` extra, which the `chromadb` extra brings: chromadb brings aiohttp, and google-genai's
    # async client then switches to it.
    if importlib.util.find_spec("chromadb") is not None:
        assert "aiohttp-client" in found


@pytest.mark.skipif(importlib.util.find_spec("chromadb") is not None, reason="chromadb is installed here")
def test_without_chromadb_the_instrumentors_step_aside(caplog):
    from opentelemetry.instrumentation.auto_instrumentation._load import _EntryPointDistFinder
    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

    from agentwatch.distro import AgentwatchDistro
    from agentwatch.instrumentors.chromadb import AgentwatchChromaInstrumentor

    instrumentor = AgentwatchChromaInstrumentor()
    assert instrumentor.instrumentation_dependencies() == ("chromadb >= 1.0",)
    assert instrumentor.instrument() is None  # from code: the dependency check says "not installed"
    assert not instrumentor.is_instrumented_by_opentelemetry and instrumentor._telemetry is None
    assert "chromadb" in caplog.text

    # Under opentelemetry-instrument the loader skips that check and treats ModuleNotFoundError as
    # "library not installed" (a debug line, no warning).
    (entry_point,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "agentwatch_chromadb"]
    with pytest.raises(ModuleNotFoundError):
        AgentwatchDistro().load_instrumentor(entry_point, skip_dep_check=True)
    assert not instrumentor.is_instrumented_by_opentelemetry

    # The aiohttp client instrumentation is skipped by the loader's dependency check when aiohttp is missing.
    # (Where the `aiohttp` extra is installed at all: without it there is no entry point to load.)
    aiohttp_eps = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "aiohttp-client"]
    if importlib.util.find_spec("aiohttp") is None and aiohttp_eps:
        (aiohttp_ep,) = aiohttp_eps
        assert get_dist_dependency_conflicts(_EntryPointDistFinder().dist_for(aiohttp_ep)) is not None
