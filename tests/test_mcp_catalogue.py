"""The MCP instrumentor's catalogue, docs and packaging (what a real run emits: tests/test_mcp.py)."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

from agentwatch import semconv
from agentwatch import catalogue_md

TELEMETRY_DOC = Path(__file__).resolve().parents[1] / "docs" / "telemetry.md"


def test_docs_tables_are_generated_from_the_catalogue():
    match = re.search(r"<!-- mcp-catalogue:start[^>]*-->\n(.*?)<!-- mcp-catalogue:end -->", TELEMETRY_DOC.read_text(), re.S)
    assert match, "mcp-catalogue markers missing from docs/telemetry.md"
    assert match.group(1).strip() == catalogue_md.mcp_markdown(), "regenerate: python -m agentwatch._docs"


def test_catalogue_follows_the_mcp_conventions():
    # The names, units and bucket advice of semantic-conventions-genai model/mcp/metrics.yaml.
    assert {m.name: (m.instrument, m.unit) for m in semconv.MCP_METRICS} == {
        "mcp.client.operation.duration": ("histogram", "s"),
        "mcp.server.operation.duration": ("histogram", "s"),
        "mcp.client.session.duration": ("histogram", "s"),
        "mcp.server.session.duration": ("histogram", "s"),
    }
    for metric in semconv.MCP_METRICS:
        assert metric.buckets == (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
        # bounded: no request id, session id, URI or content on a metric
        assert not {"jsonrpc.request.id", "mcp.session.id", "mcp.resource.uri", "gen_ai.tool.call.arguments",
                    "gen_ai.tool.call.result"} & set(metric.attributes), metric.name
    client, server = semconv.MCP_SPANS
    assert (client.kind, server.kind) == ("CLIENT", "SERVER")
    assert client.name == server.name == "{mcp.method.name} {target}"
    for span in (client, server):
        assert {"mcp.method.name", "mcp.protocol.version", "jsonrpc.request.id", "error.type"} <= set(span.attributes)
        assert set(span.content_attributes) == {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}
    assert "mcp.session.id" in client.attributes and "mcp.session.id" in server.attributes


def test_entry_point_is_registered():
    found = {e.name: e.value for e in entry_points(group="opentelemetry_instrumentor")}
    assert found["agentwatch_mcp"] == "agentwatch.instrumentors.mcp:AgentwatchMCPInstrumentor"
