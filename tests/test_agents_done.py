"""Issue 20's "Done when", end to end: an ADK agent team with an MCP tool, behind FastAPI, under
``opentelemetry-instrument``, against the fake Gemini, exporting to tests/otlp_receiver.py.

examples/adk_service/app.py with ``--mcp-stdio`` / ``--mcp-url``: ``concierge`` -> transfer -> ``weather_agent``,
whose ``get_weather`` is tests/mcp_app/server.py's tool (ADK's ``McpToolset``), the server a second process under
``opentelemetry-instrument`` too (started by ADK over stdio, or by the test as a Streamable HTTP server). Proven:

- one trace across the FastAPI process and the MCP server process (``params._meta`` carries it, ``initialize``
  and ``tools/list`` included);
- one span per Gemini call (agentwatch's; ADK's own model-call telemetry stands down), one ``execute_tool`` span
  per tool call, one CLIENT and one SERVER span per MCP request, the client's ``tools/call`` being ADK's
  ``execute_tool get_weather`` span itself (no sibling), the server's ``tools/call`` its child;
- the request's token roll-up equal to what the fake Gemini billed (read off the fake itself);
- with content capture off, not one byte of the user's message in any export of either process.

The hand-written function-calling loop of the demo (``POST /chat/tools``, zero code changes) is the last test:
model -> tool (linked to the model call that asked for it) -> model (linked back to the tool).

Runs in .venv-lowest (google-adk 2.13, mcp 2.3.0); skipped where google-adk is absent.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from _service import BIN, FAST_EXPORT, ROOT, clean_env, free_port, start_service
from otlp_receiver import OTLPReceiver

from agentwatch import semconv as sc

HAS_ADK = importlib.util.find_spec("google.adk") is not None and importlib.util.find_spec("mcp") is not None
needs_adk = pytest.mark.skipif(not HAS_ADK, reason="google-adk and mcp are not installed (they run in .venv-lowest)")

APP = ROOT / "examples" / "adk_service" / "app.py"
MCP_SERVER = ROOT / "tests" / "mcp_app" / "server.py"
MARKER = "quokka-marmalade-5150"  # in the user's message only: must not leave either process
QUESTION = f"What is the weather like in Paris today? {MARKER}"
MCP_REQUESTS = ("initialize", "notifications/initialized", "tools/list")


def _exporting(rx: OTLPReceiver, service: str) -> dict[str, str]:
    return clean_env(**rx.env(), **FAST_EXPORT, OTEL_SERVICE_NAME=service, OTEL_TRACES_EXPORTER="otlp",
                     OTEL_METRICS_EXPORTER="otlp", OTEL_LOGS_EXPORTER="otlp")


@pytest.fixture
def billed(fake_gemini, monkeypatch) -> list[dict]:
    """Every ``usageMetadata`` the fake Gemini answers with, as it sends it (non-streamed responses: ADK's)."""
    handler = sys.modules[type(fake_gemini.server).__module__]._Handler
    original = handler._send_json
    seen: list[dict] = []

    def send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        if status == 200 and isinstance(payload.get("usageMetadata"), dict):
            seen.append(payload["usageMetadata"])
        original(self, status, payload, headers)

    monkeypatch.setattr(handler, "_send_json", send_json)
    return seen


def _start_http_server(rx: OTLPReceiver) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([str(BIN / "opentelemetry-instrument"), "python", str(MCP_SERVER), "http", str(port)],
                              env=_exporting(rx, "mcp-server"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:  # a TCP connect only: an HTTP request would open an MCP session of its own
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            assert time.monotonic() < deadline, "the MCP server did not start"
            time.sleep(0.2)


def _run(tmp_path: Path, fake_gemini, transport: str) -> tuple[list[dict], bytes, list[dict], str]:
    """Two requests to the service (the second on ADK's pooled MCP session); the exports of both processes."""
    with OTLPReceiver(protocol="http") as rx:
        http_server = None
        if transport == "http":
            http_server, port = _start_http_server(rx)
            option = ["--mcp-url", f"http://127.0.0.1:{port}/mcp"]
        else:  # ADK starts the server; it inherits the app's environment, its own service name set here
            option = ["--mcp-stdio", f"env OTEL_SERVICE_NAME=mcp-server {BIN / 'opentelemetry-instrument'} python {MCP_SERVER} stdio"]
        env = {**_exporting(rx, "adk-service"), **fake_gemini.env()}
        service = start_service(tmp_path, env, command=["python", str(APP), "--port", "{port}", *option])
        bodies = []
        try:
            for session in ("sess-1", "sess-2"):
                status, body = service.request("POST", "/chat", {"message": QUESTION, "session_id": session}, timeout=90)
                assert status == 200, (body, service.stderr())
                bodies.append(body)

            def complete(r: OTLPReceiver) -> bool:
                names = Counter((s["resource"].get("service.name"), s["name"]) for s in r.spans())
                return names[("adk-service", "POST /chat")] == names[("mcp-server", "tools/call get_weather")] == 2

            assert rx.wait_for(complete, timeout=30), sorted({s["name"] for s in rx.spans()})
        finally:
            service.terminate()  # closes ADK's MCP session (the stdio server ends with it)
            if http_server is not None:
                http_server.terminate()
                http_server.wait(20)
        time.sleep(0.5)  # the servers' last batches (their shutdown flushes them)
        spans = rx.spans()
        raw = b"".join(r.SerializeToString() for signal in ("traces", "metrics", "logs") for r in rx.raw(signal))
    return spans, raw, bodies, service.stderr()


@needs_adk
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_adk_agent_with_mcp_tool_is_one_trace_with_one_span_per_call(tmp_path, fake_gemini, billed, transport):
    spans, raw, bodies, stderr = _run(tmp_path, fake_gemini, transport)
    assert "Traceback" not in stderr, stderr
    for body in bodies:
        assert body["answer"].startswith("The get_weather tool says") and "sunny in Paris" in body["answer"], body
    assert {s["resource"].get("service.name") for s in spans} == {"adk-service", "mcp-server"}
    by_id = {s["span_id"]: s for s in spans}
    for span in spans:  # every parent exported (no orphan, no span parented to an unexported one)
        assert span["parent_span_id"] is None or span["parent_span_id"] in by_id, span["name"]
    chats = sorted((s for s in spans if s["name"] == "POST /chat"), key=lambda s: s["start_time_unix_nano"])
    traces = [chat["trace_id"] for chat in chats]
    # one trace per request across both processes: every span but the readiness probe's is in one of them, except
    # (Streamable HTTP) the MCP session's own exchanges -- its GET event stream and the DELETE that ends it at
    # shutdown -- which start traces of their own rather than stretch the first request's to the app's lifetime
    outside = sorted((s["resource"].get("service.name"), s["name"]) for s in spans if s["trace_id"] not in traces)
    session_exchanges = [("adk-service", "DELETE"), ("adk-service", "GET")] if transport == "http" else []
    assert outside == sorted([("adk-service", "GET /"), *session_exchanges]), outside
    for chat in chats:  # and no span of the service outlives its request
        late = [s["name"] for s in spans if s["trace_id"] == chat["trace_id"] and s["resource"].get("service.name") == "adk-service"
                and s["end_time_unix_nano"] > chat["end_time_unix_nano"]]
        assert not late, late
    # the MCP session is opened once (first request) and reused: initialize only in the first trace
    assert [s["trace_id"] for s in spans if s["name"] == "initialize"] == [traces[0], traces[0]]
    # the fake billed 3 calls per request, in order
    assert len(billed) == 6, billed
    for number, (chat, usage) in enumerate(zip(chats, (billed[:3], billed[3:]))):
        in_trace = [s for s in spans if s["trace_id"] == chat["trace_id"]]
        _check_request(chat, in_trace, by_id, usage, transport, first=number == 0)

    # capture off: nothing of the user's message in any exported byte of either process
    assert MARKER.encode() not in raw and b"weather like in Paris" not in raw
    assert sc.GEN_AI_TOOL_CALL_ARGUMENTS.encode() not in raw and sc.GEN_AI_TOOL_CALL_RESULT.encode() not in raw


def _check_request(chat: dict, spans: list[dict], by_id: dict, billed: list[dict], transport: str, *, first: bool) -> None:
    app = [s for s in spans if s["resource"].get("service.name") == "adk-service"]
    server = [s for s in spans if s["resource"].get("service.name") == "mcp-server"]
    # one span per Gemini call: agentwatch's, none of ADK's (call_llm / generate_content of gcp.vertex.agent)
    model = [s for s in app if s["attributes"].get(sc.GEN_AI_OPERATION_NAME) in ("generate_content", "chat")
             or s["name"].startswith(("generate_content", "call_llm"))]
    assert len(model) == 3 and {s["scope"] for s in model} == {"agentwatch.instrumentors.gemini"}, \
        [(s["name"], s["scope"]) for s in model]
    # one execute_tool span per tool call
    tools = [s for s in app if s["name"].startswith("execute_tool")]
    assert sorted(s["name"] for s in tools) == ["execute_tool get_weather", "execute_tool transfer_to_agent"]
    tool = next(s for s in tools if s["name"] == "execute_tool get_weather")
    assert tool["attributes"]["gen_ai.tool.type"] == "McpTool" and tool["attributes"][sc.GEN_AI_TOOL_CALL_ID]

    # one CLIENT and one SERVER span per MCP request; the SDK's own spans replaced, not doubled
    assert not [s["name"] for s in spans if s["scope"] == "mcp-python-sdk" or s["name"].startswith("MCP send")]
    requests = MCP_REQUESTS if first else ("tools/list",)
    client_mcp = Counter(s["name"] for s in app if s["scope"] == "agentwatch.instrumentors.mcp")
    server_mcp = Counter(s["name"] for s in server if sc.MCP_METHOD_NAME in s["attributes"])
    assert client_mcp == Counter(requests), client_mcp  # tools/call: ADK's execute_tool span (below)
    assert server_mcp == Counter([*requests, "tools/call get_weather"]), server_mcp
    for name in requests:
        client_span = next(s for s in app if s["name"] == name and s["scope"] == "agentwatch.instrumentors.mcp")
        server_span = next(s for s in server if s["name"] == name)
        assert client_span["kind"] == "CLIENT" and server_span["kind"] == "SERVER"
        assert server_span["parent_span_id"] == client_span["span_id"], name  # across the process boundary
        assert by_id[client_span["parent_span_id"]]["name"].startswith("invoke_agent"), name
    # the client's tools/call joins ADK's execute_tool span: its MCP attributes there, the server's span its child
    call = next(s for s in server if s["name"] == "tools/call get_weather")
    assert call["parent_span_id"] == tool["span_id"]
    assert tool["attributes"][sc.MCP_METHOD_NAME] == "tools/call" and tool["attributes"][sc.GEN_AI_TOOL_NAME] == "get_weather"
    assert tool["attributes"][sc.JSONRPC_REQUEST_ID] == call["attributes"][sc.JSONRPC_REQUEST_ID]
    assert call["attributes"][sc.NETWORK_TRANSPORT] == ("tcp" if transport == "http" else "pipe")
    assert by_id[tool["parent_span_id"]]["name"] == "invoke_agent weather_agent"

    # tokens: the roll-up on the server span equals what the fake Gemini billed (thinking tokens are output)
    rollup = chat["attributes"]
    assert rollup["agentwatch.request.gen_ai.calls"] == 3
    assert rollup["agentwatch.request.gen_ai.input_tokens"] == sum(u["promptTokenCount"] for u in billed)
    assert rollup["agentwatch.request.gen_ai.output_tokens"] == sum(
        u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0) for u in billed)
    assert all(u.get("thoughtsTokenCount") for u in billed)  # the thinking budget: the sum has thinking tokens
    assert rollup["agentwatch.request.gen_ai.tool_calls"] == 2 and rollup["agentwatch.request.gen_ai.transfers"] == 1

def test_the_demo_hand_written_loop_links_model_tool_model_by_call_id(tmp_path, fake_gemini, monkeypatch):
    """The demo's ``POST /chat/tools`` (plain google-genai, no telemetry code; run_demo.py's targets only), the model
    sending a call id: model -> ``execute_tool get_order_status`` (linked to that model call, the same call id) ->
    model (linked back to the tool span), all in the request's trace under ``invoke_agent order-helper``."""
    from _service import APP_DIR

    sys.path.insert(0, str(APP_DIR.parent))
    try:
        from run_demo import AGENT_TARGETS
    finally:
        sys.path.remove(str(APP_DIR.parent))
    handler = sys.modules[type(fake_gemini.server).__module__]._Handler
    original = handler._function_call
    sent: list[str] = []

    def with_id(body: dict) -> dict | None:  # the fake sends no call id by default, as Gemini 2.x often does not
        call = original(body)
        if call is not None:
            sent.append(f"call-{MARKER[:6]}-{len(sent)}")
            call["functionCall"]["id"] = sent[-1]
        return call

    monkeypatch.setattr(handler, "_function_call", staticmethod(with_id))
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(**rx.env(), **FAST_EXPORT, **fake_gemini.env(), **AGENT_TARGETS, OTEL_LOGS_EXPORTER="none",
                        AGENTWATCH_ENDPOINT_CHECK="false")
        service = start_service(tmp_path, env)
        try:
            status, body = service.request("POST", "/chat/tools", {"message": f"Where is my order? {MARKER}",
                                                                   "session_id": "s1"}, timeout=60)
            assert status == 200 and body["tool_calls"] == 1 and "shipped" in body["answer"], body
            assert rx.wait_for(lambda r: any(s["name"] == "POST /chat/tools" for s in r.spans()), timeout=15)
        finally:
            service.terminate()
        spans = rx.spans()
        raw = b"".join(r.SerializeToString() for r in rx.raw("traces"))
    assert len(sent) == 1
    server = next(s for s in spans if s["name"] == "POST /chat/tools")
    in_trace = [s for s in spans if s["trace_id"] == server["trace_id"]]
    agent = next(s for s in in_trace if s["name"] == "invoke_agent order-helper")
    tools = [s for s in in_trace if s["name"].startswith("execute_tool")]
    models = sorted((s for s in in_trace if s["attributes"].get(sc.GEN_AI_OPERATION_NAME) == "generate_content"
                     and "agentwatch.gen_ai.round_trip" not in s["attributes"]), key=lambda s: s["start_time_unix_nano"])
    assert len(models) == 2 and [s["name"] for s in tools] == ["execute_tool get_order_status"], [s["name"] for s in in_trace]
    tool = tools[0]
    assert agent["parent_span_id"] == server["span_id"]
    assert {s["parent_span_id"] for s in [*models, tool]} == {agent["span_id"]}
    assert models[0]["end_time_unix_nano"] <= tool["start_time_unix_nano"] <= tool["end_time_unix_nano"] <= models[1]["start_time_unix_nano"]
    assert tool["attributes"][sc.GEN_AI_TOOL_CALL_ID] == sent[0]  # the id the model sent
    assert [(link["trace_id"], link["span_id"]) for link in tool["links"]] == [(server["trace_id"], models[0]["span_id"])]
    assert [link["span_id"] for link in models[1]["links"]] == [tool["span_id"]] and not models[0]["links"]
    assert MARKER.encode() not in raw
