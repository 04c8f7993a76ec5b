"""agentwatch.instrumentors.mcp for real: the MCP SDK's ClientSession against an MCPServer (FastMCP) in another
process, over stdio and Streamable HTTP, both under ``opentelemetry-instrument`` exporting to the test OTLP receiver.

One trace across the two processes; one CLIENT and one SERVER span per request, ``initialize`` and ``tools/list``
included (the SDK's own spans replaced); the MCP conventions' attributes and metrics; a tool result with
``isError`` -> ``error.type=tool_error``; tool arguments only with content capture on, and then scrubbed.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from _service import BIN, FAST_EXPORT, clean_env, free_port
from otlp_receiver import OTLPReceiver

from agentwatch import semconv as sc

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parent / "mcp_app"
EMAIL = "ann.lee@example.com"
# A session id is redacted by the scrubber's session-key rule by default; the HTTP test keeps it to correlate.
SESSION_IDS_KEPT = {"AGENTWATCH_SCRUB_NOT_SECRET_KEYS": sc.MCP_SESSION_ID}
REQUESTS = ("initialize", "tools/list", "tools/call get_weather", "tools/call broken", "prompts/get missing")


def _env(rx: OTLPReceiver, service: str, capture: str, **extra: str) -> dict[str, str]:
    return clean_env(**extra,
        **FAST_EXPORT, **rx.env(), OTEL_SERVICE_NAME=service, OTEL_TRACES_EXPORTER="otlp", OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="none", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=capture,
    )


def _client(rx: OTLPReceiver, *args: str, capture: str = "NO_CONTENT", **extra: str) -> dict:
    out = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), "python", str(APP / "client.py"), *args, EMAIL],
        env=_env(rx, "mcp-client", capture, **extra), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "agentwatch WARNING" not in out.stderr, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_spans(rx: OTLPReceiver, trace_id: str) -> list[dict]:
    def complete(r: OTLPReceiver) -> bool:
        names = {(s["resource"].get("service.name"), s["name"]) for s in r.spans() if s["trace_id"] == trace_id}
        return all((svc, n) in names for svc in ("mcp-client", "mcp-server") for n in REQUESTS)

    rx.wait_for(complete, timeout=30)
    return [s for s in rx.spans() if s["trace_id"] == trace_id]


def _mcp_spans(spans: list[dict], service: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for span in spans:
        if span["resource"].get("service.name") == service and sc.MCP_METHOD_NAME in span["attributes"]:
            out.setdefault(span["name"], []).append(span)
    return out


def _check_trace(spans: list[dict], *, transport: str, error: int, inside_tool: bool = False) -> tuple[dict, dict]:
    client, server = _mcp_spans(spans, "mcp-client"), _mcp_spans(spans, "mcp-server")
    # The SDK's own spans are replaced, not doubled: nothing from its tracer, nothing named "MCP send ...".
    assert not [s["name"] for s in spans if s["scope"] == "mcp-python-sdk" or s["name"].startswith("MCP send")]
    for name in REQUESTS:
        if inside_tool and name == "tools/call get_weather":
            continue
        assert len(client[name]) == 1, (name, sorted(client))
        assert len(server[name]) == 1, (name, sorted(server))
        c, s = client[name][0], server[name][0]
        assert c["kind"] == "CLIENT" and s["kind"] == "SERVER"
        assert s["parent_span_id"] == c["span_id"], name  # parented across the process boundary via params._meta
        method = name.split(" ")[0]
        for span in (c, s):
            attributes = span["attributes"]
            assert attributes[sc.MCP_METHOD_NAME] == method
            assert attributes[sc.MCP_PROTOCOL_VERSION]
            assert attributes[sc.JSONRPC_REQUEST_ID] == c["attributes"][sc.JSONRPC_REQUEST_ID]
        assert s["attributes"][sc.NETWORK_TRANSPORT] == transport
        if transport == "tcp":
            assert s["attributes"][sc.MCP_SESSION_ID]
        else:
            assert sc.MCP_SESSION_ID not in s["attributes"] and sc.MCP_SESSION_ID not in c["attributes"]
    for side in (client, server):
        bad = side["tools/call broken"][0]
        assert bad["attributes"][sc.ERROR_TYPE] == "tool_error" and bad["status"] == "ERROR"
        assert bad["attributes"][sc.GEN_AI_TOOL_NAME] == "broken"
        assert bad["attributes"][sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    # A JSON-RPC error answer: the client's error type is its code, the server's the handler's exception.
    for side in (client, server):
        missing = side["prompts/get missing"][0]
        assert missing["status"] == "ERROR" and missing["attributes"][sc.GEN_AI_PROMPT_NAME] == "missing"
    attributes = client["prompts/get missing"][0]["attributes"]
    assert attributes[sc.ERROR_TYPE] == attributes[sc.RPC_RESPONSE_STATUS_CODE] == str(error)  # the code the app got
    assert server["prompts/get missing"][0]["attributes"][sc.ERROR_TYPE] == "ValueError"  # MCPServer's unknown prompt
    if not inside_tool:
        ok = client["tools/call get_weather"][0]
        assert ok["status"] != "ERROR" and sc.ERROR_TYPE not in ok["attributes"]
    # The notification after initialize is in the same trace too (the SDK injects nothing into notifications).
    assert server["notifications/initialized"][0]["parent_span_id"] == client["notifications/initialized"][0]["span_id"]
    return client, server


def _check_metrics(rx: OTLPReceiver) -> None:
    def seen(r: OTLPReceiver) -> bool:
        names = {(m["resource"].get("service.name"), m["name"]) for m in r.metrics()}
        return {("mcp-client", sc.MCP_CLIENT_OPERATION_DURATION), ("mcp-server", sc.MCP_SERVER_OPERATION_DURATION),
                ("mcp-client", sc.MCP_CLIENT_SESSION_DURATION), ("mcp-server", sc.MCP_SERVER_SESSION_DURATION)} <= names

    assert rx.wait_for(seen, timeout=30), sorted({m["name"] for m in rx.metrics()})
    for name, service in ((sc.MCP_CLIENT_OPERATION_DURATION, "mcp-client"), (sc.MCP_SERVER_OPERATION_DURATION, "mcp-server")):
        metric = [m for m in rx.metrics(name) if m["resource"].get("service.name") == service][-1]
        assert metric["unit"] == "s" and metric["type"] == "histogram"
        points = {(p["attributes"][sc.MCP_METHOD_NAME], p["attributes"].get(sc.GEN_AI_TOOL_NAME),
                   p["attributes"].get(sc.ERROR_TYPE)): p for p in metric["data_points"]}
        for key in (("initialize", None, None), ("tools/list", None, None), ("tools/call", "broken", "tool_error")):
            assert points[key]["count"] >= 1, (name, sorted(points))
            assert tuple(points[key]["explicit_bounds"]) == tuple(float(b) for b in sc.MCP_DURATION_BUCKETS)
        # no request id, session id or other per-call value on a metric
        assert all(sc.JSONRPC_REQUEST_ID not in p["attributes"] and sc.MCP_SESSION_ID not in p["attributes"]
                   for p in metric["data_points"])


def _server_sessions(rx: OTLPReceiver) -> dict:
    metric = [m for m in rx.metrics(sc.MCP_SERVER_SESSION_DURATION) if m["resource"].get("service.name") == "mcp-server"][-1]
    return {p["attributes"].get(sc.NETWORK_TRANSPORT): p["count"] for p in metric["data_points"]}


def _exported_text(rx: OTLPReceiver) -> str:
    return json.dumps([s["attributes"] for s in rx.spans()] + [s["events"] for s in rx.spans()], default=str)


def test_stdio_one_trace_one_span_per_request_and_metrics() -> None:
    with OTLPReceiver(protocol="http") as rx:
        result = _client(rx, "stdio")
        assert result["tools"] == ["broken", "get_weather"] and result["ok"] is False and result["bad"] is True
        assert isinstance(result["error"], int)  # the app still gets the SDK's MCPError
        spans = _wait_spans(rx, result["trace_id"])
        _check_trace(spans, transport="pipe", error=result["error"])
        _check_metrics(rx)
        assert _server_sessions(rx) == {"pipe": 1}
        # Capture off: neither arguments nor results leave either process.
        text = _exported_text(rx)
        assert EMAIL not in text and "ann.lee" not in text
        assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in text and sc.GEN_AI_TOOL_CALL_RESULT not in text


def test_stdio_capture_on_scrubs_arguments_and_results() -> None:
    with OTLPReceiver(protocol="http") as rx:
        result = _client(rx, "stdio", capture="SPAN_ONLY")
        client, server = _check_trace(_wait_spans(rx, result["trace_id"]), transport="pipe", error=result["error"])
        for side in (client, server):
            attributes = side["tools/call get_weather"][0]["attributes"]
            assert json.loads(attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"city": "[REDACTED:email]"}
            assert "sunny in [REDACTED:email]" in attributes[sc.GEN_AI_TOOL_CALL_RESULT]
            assert json.loads(side["tools/call broken"][0]["attributes"][sc.GEN_AI_TOOL_CALL_RESULT])["isError"] is True
        text = _exported_text(rx)
        assert EMAIL not in text and "ann.lee" not in text


def test_tools_call_inside_execute_tool_span_joins_it() -> None:
    with OTLPReceiver(protocol="http") as rx:
        result = _client(rx, "stdio", "--inside-tool")
        rx.wait_for(lambda r: any(s["name"] == "tools/call broken" and s["resource"].get("service.name") == "mcp-server"
                                  for s in r.spans()), timeout=30)
        time.sleep(0.5)
        spans = [s for s in rx.spans() if s["trace_id"] == result["trace_id"]]
        client, server = _check_trace(spans, transport="pipe", error=result["error"], inside_tool=True)
        assert "tools/call get_weather" not in client  # no sibling of the tool span
        tool = [s for s in spans if s["name"] == "execute_tool get_weather"]
        assert len(tool) == 1
        attributes = tool[0]["attributes"]
        assert attributes[sc.MCP_METHOD_NAME] == "tools/call" and attributes[sc.GEN_AI_TOOL_NAME] == "get_weather"
        assert attributes[sc.JSONRPC_REQUEST_ID] and attributes[sc.MCP_PROTOCOL_VERSION]
        assert server["tools/call get_weather"][0]["parent_span_id"] == tool[0]["span_id"]


def test_streamable_http_one_trace_with_session_id() -> None:
    with OTLPReceiver(protocol="http") as rx:
        port = free_port()
        server = subprocess.Popen(
            [str(BIN / "opentelemetry-instrument"), "python", str(APP / "server.py"), "http", str(port)],
            env=_env(rx, "mcp-server", "NO_CONTENT", **SESSION_IDS_KEPT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                try:  # a TCP connect only: an HTTP request would open an MCP session of its own
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the MCP server did not start"
                    time.sleep(0.2)
            result = _client(rx, "http", "--url", f"http://127.0.0.1:{port}/mcp", **SESSION_IDS_KEPT)
            client, server_spans = _check_trace(_wait_spans(rx, result["trace_id"]), transport="tcp", error=result["error"])
            session_ids = {s[0]["attributes"][sc.MCP_SESSION_ID] for s in server_spans.values()}
            assert len(session_ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", *session_ids), session_ids
            # The client's spans carry the id the server gave, from the initialize response on.
            assert {n: s[0]["attributes"].get(sc.MCP_SESSION_ID) for n, s in client.items()} == dict.fromkeys(client, *session_ids)
            # Each request's HTTP POST (httpx2 instrumentation, which also sets the traceparent header) is a
            # child of its MCP client span: the HTTP headers and params._meta tell the server the same trace.
            spans = [s for s in rx.spans() if s["trace_id"] == result["trace_id"]]
            posts = {s["parent_span_id"] for s in spans if s["kind"] == "CLIENT" and s["name"] == "POST"}
            assert {c[0]["span_id"] for c in client.values()} <= posts
        finally:
            server.terminate()
            server.wait(20)
        _check_metrics(rx)
        assert _server_sessions(rx) == {"tcp": 1}  # one session, counted once (serve_loop runs serve_connection)


def test_no_import_of_mcp_when_the_app_does_not_use_it() -> None:
    """The entry point loads where mcp is installed, but mcp itself is imported only by the app."""
    out = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), "python", "-c",
         "import sys; print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))"],
        env=clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none"),
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
