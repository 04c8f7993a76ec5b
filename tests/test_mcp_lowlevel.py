"""agentwatch.instrumentors.mcp in one process: the low-level ``mcp.server.lowlevel.Server`` (handlers, no
MCPServer) behind the SDK's in-memory transport and a real ClientSession; faults of ours never reach the app;
uninstrumenting gives the SDK its own code back. (Across processes, stdio and HTTP: tests/test_mcp.py.)"""

from __future__ import annotations

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession
from mcp.client._memory import InMemoryTransport
from mcp.server.lowlevel import Server
from mcp.shared import jsonrpc_dispatcher
from opentelemetry import trace

from agentwatch import semconv as sc
from agentwatch.instrumentors import mcp as instrumentor_module
from agentwatch.instrumentors.mcp import AgentwatchMCPInstrumentor

TOOL = types.Tool(name="lookup", description="d", input_schema={"type": "object", "properties": {"q": {"type": "string"}}})


async def _list_tools(ctx, params) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[TOOL])


async def _call_tool(ctx, params) -> types.CallToolResult:
    failed = params.arguments.get("q") == "fail"
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"got {params.arguments['q']}")], is_error=failed)


def _session_run(tracer_provider=None) -> list:
    server = Server("lowlevel", on_list_tools=_list_tools, on_call_tool=_call_tool)
    tracer = trace.get_tracer("app", tracer_provider=tracer_provider)

    async def main() -> list:
        with tracer.start_as_current_span("agent turn"):
            return await session()

    async def session() -> list:
        async with InMemoryTransport(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            ok = await session.call_tool("lookup", {"q": "fine"})
            bad = await session.call_tool("lookup", {"q": "fail"})
            return [sorted(t.name for t in tools.tools), ok.is_error, bad.is_error]

    return anyio.run(main)


@pytest.fixture
def instrumented(telemetry):
    instrumentor = AgentwatchMCPInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        yield telemetry
    finally:
        instrumentor.uninstrument()


def test_lowlevel_server_one_span_each_side_in_one_trace(instrumented):
    assert _session_run(instrumented.tracer_provider) == [["lookup"], False, True]
    spans = instrumented.spans(instrumentor_module.SCOPE)
    by = {(s.kind.name, s.name): s for s in spans}
    for name in ("initialize", "tools/list", "tools/call lookup"):
        client = [s for s in spans if s.kind.name == "CLIENT" and s.name == name]
        server = [s for s in spans if s.kind.name == "SERVER" and s.name == name]
        assert len(client) == (2 if name == "tools/call lookup" else 1) == len(server), name
    (turn,) = instrumented.spans("app")
    assert {s.context.trace_id for s in spans} == {turn.context.trace_id}
    for server in (s for s in spans if s.kind.name == "SERVER"):
        parent = next(s for s in spans if s.context.span_id == server.parent.span_id)
        assert parent.kind.name == "CLIENT" and parent.name == server.name
        assert server.attributes.get(sc.JSONRPC_REQUEST_ID) == parent.attributes.get(sc.JSONRPC_REQUEST_ID)
        assert (sc.JSONRPC_REQUEST_ID in server.attributes) == (not server.name.startswith("notifications/"))
    errors = [s for s in spans if s.attributes.get(sc.ERROR_TYPE) == "tool_error"]
    assert sorted(s.kind.name for s in errors) == ["CLIENT", "SERVER"]
    assert by[("SERVER", "initialize")].attributes[sc.NETWORK_TRANSPORT] == "pipe"
    metrics = instrumented.metrics(instrumentor_module.SCOPE)
    assert {sc.MCP_CLIENT_OPERATION_DURATION, sc.MCP_SERVER_OPERATION_DURATION, sc.MCP_CLIENT_SESSION_DURATION,
            sc.MCP_SERVER_SESSION_DURATION} <= set(metrics)


def test_a_fault_of_ours_leaves_the_app_its_results(instrumented, lenient, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(instrumentor_module, "_base_attributes", broken)
    monkeypatch.setattr(instrumentor_module, "_is_tool_error", broken)
    assert _session_run() == [["lookup"], False, True]
    assert not [s for s in instrumented.spans(instrumentor_module.SCOPE) if s.name.startswith("tools/")]


def test_uninstrument_gives_the_sdk_its_code_back(telemetry):
    original = jsonrpc_dispatcher.otel_span
    instrumentor = AgentwatchMCPInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    assert jsonrpc_dispatcher.otel_span is not original
    instrumentor.uninstrument()
    assert jsonrpc_dispatcher.otel_span is original
    assert not hasattr(jsonrpc_dispatcher.JSONRPCDispatcher.send_raw_request, "__wrapped__")
    assert _session_run() == [["lookup"], False, True]
    assert not telemetry.spans(instrumentor_module.SCOPE)
