"""Google ADK under ``opentelemetry-instrument`` with agentwatch (agentwatch/instrumentors/adk.py).

The ADK demo service (examples/adk_service/app.py: ``concierge`` -> transfer -> ``weather_agent`` ->
``get_weather``) runs a real ``Runner`` with ``InMemorySessionService`` against the fake Gemini over HTTP,
exporting through the real SDK to tests/otlp_receiver.py. Runs in .venv-lowest (google-adk 2.13, the
``adk`` dependency group); skipped where google-adk is absent, where the zero-cost test runs instead.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _service import FAST_EXPORT, ROOT, clean_env, start_service
from otlp_receiver import OTLPReceiver

HAS_ADK = importlib.util.find_spec("google.adk") is not None
needs_adk = pytest.mark.skipif(not HAS_ADK, reason="google-adk is not installed (it runs in .venv-lowest)")

APP = ROOT / "examples" / "adk_service" / "app.py"
QUESTION = "What is the weather like in Paris today? My card is 4111 1111 1111 1111."
SECRET_BITS = ("weather like in Paris", "4111")


def _run(tmp_path: Path, fake_gemini, **extra: str) -> tuple[list[dict], list[dict], bytes, str, dict]:
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(**rx.env(), **FAST_EXPORT, GEMINI_BASE_URL=fake_gemini.url, GEMINI_API_KEY=fake_gemini.key,
                        **extra)
        service = start_service(tmp_path, env, command=["python", str(APP), "--port", "{port}"])
        try:
            status, body = service.request("POST", "/chat", {"message": QUESTION, "session_id": "sess-42"}, timeout=60)
            assert status == 200, (body, service.stderr())
            assert rx.wait_for(lambda r: any(s["name"] == "POST /chat" for s in r.spans()), timeout=15)
            assert rx.wait_for(lambda r: r.metrics("gen_ai.client.token.usage"), timeout=15)
        finally:
            service.terminate()
        spans, metrics = rx.spans(), rx.metrics()
        raw = b"".join(r.SerializeToString() for signal in ("traces", "metrics", "logs") for r in rx.raw(signal))
    return spans, metrics, raw, service.stderr(), body


def _points(metrics: list[dict], name: str) -> list[dict]:
    """The latest point of each series of ``name`` (exports are cumulative: each repeats every series)."""
    latest: dict[str, dict] = {}
    for point in (p for m in metrics if m["name"] == name for p in m["data_points"]):
        key = json.dumps(point["attributes"], sort_keys=True, default=str)
        if key not in latest or point["time_unix_nano"] >= latest[key]["time_unix_nano"]:
            latest[key] = point
    return list(latest.values())


@needs_adk
@pytest.mark.slow
def test_adk_agent_team_one_span_per_model_call_and_billed_tokens(tmp_path, fake_gemini):
    spans, metrics, raw, stderr, body = _run(tmp_path, fake_gemini)
    assert "Traceback" not in stderr, stderr
    assert body["answer"].startswith("The get_weather tool says"), body

    model = [s for s in spans if s["name"].startswith(("generate_content", "call_llm"))]
    # three Gemini calls (concierge -> transfer; weather_agent -> get_weather; weather_agent -> answer),
    # each one agentwatch span, none of ADK's
    assert len(model) == 3, [(s["name"], s["scope"]) for s in model]
    assert {s["scope"] for s in model} == {"agentwatch.instrumentors.gemini"}

    by_id = {s["span_id"]: s for s in spans}
    agents = [s for s in spans if s["name"].startswith("invoke_agent")]
    assert {s["attributes"]["gen_ai.agent.name"] for s in agents} == {"concierge", "weather_agent"}
    for span in agents:
        assert span["attributes"]["gen_ai.conversation.id"] == "sess-42"
    tools = {s["name"]: s for s in spans if s["name"].startswith("execute_tool")}
    assert set(tools) == {"execute_tool transfer_to_agent", "execute_tool get_weather"}, list(tools)
    for span in tools.values():
        assert span["attributes"]["gen_ai.tool.call.id"]
        assert by_id[span["parent_span_id"]]["name"].startswith(("invoke_agent", "generate_content", "execute_tool"))
    invocation_ids = {s["attributes"].get("gcp.vertex.agent.invocation_id") for s in [*agents, *tools.values()]}
    invocation_ids.discard(None)
    assert len(invocation_ids) == 1, invocation_ids
    # every model span is inside the request's trace, under an agent
    chat = next(s for s in spans if s["name"] == "POST /chat")
    for span in model:
        assert span["trace_id"] == chat["trace_id"]
        ancestor = by_id[span["parent_span_id"]]
        while not ancestor["name"].startswith("invoke_agent"):
            ancestor = by_id[ancestor["parent_span_id"]]
        # ... and says which agent called, with ADK's ids, as the official instrumentation's span does
        attributes = span["attributes"]
        assert attributes["gen_ai.agent.name"] == ancestor["attributes"]["gen_ai.agent.name"]
        assert attributes["gen_ai.conversation.id"] == "sess-42"
        assert attributes["gcp.vertex.agent.invocation_id"] in invocation_ids
        assert attributes["gcp.vertex.agent.event_id"]
    assert sorted(s["attributes"]["gen_ai.agent.name"] for s in model) == ["concierge", "weather_agent", "weather_agent"]

    # tokens: one series per (type, model), the sum equal to what the fake billed, thinking tokens included
    usage = [s["attributes"] for s in model]
    billed_in = sum(a["gen_ai.usage.input_tokens"] for a in usage)
    billed_out = sum(a["gen_ai.usage.output_tokens"] for a in usage)
    thoughts = sum(a.get("gen_ai.usage.reasoning.output_tokens", a.get("agentwatch.gen_ai.usage.thoughts_tokens", 0))
                   for a in usage)
    token_points = _points(metrics, "gen_ai.client.token.usage")
    scopes = {m["scope"] for m in metrics if m["name"] == "gen_ai.client.token.usage"}
    assert scopes == {"agentwatch.instrumentors.gemini"}, scopes
    by_type = {p["attributes"]["gen_ai.token.type"]: p for p in token_points}
    assert len(token_points) == len(by_type) == 2, token_points
    assert by_type["input"]["count"] == by_type["output"]["count"] == 3
    assert by_type["input"]["sum"] == billed_in
    assert by_type["output"]["sum"] == billed_out
    # the thinking budget billed thinking tokens, counted in the output tokens (the billed figure)
    assert thoughts > 0
    for attributes in usage:
        assert attributes["gen_ai.usage.output_tokens"] > attributes["gen_ai.usage.reasoning.output_tokens"] > 0
    rollup = chat["attributes"]
    assert rollup["agentwatch.request.gen_ai.calls"] == 3, rollup
    assert rollup["agentwatch.request.gen_ai.input_tokens"] == billed_in
    assert rollup["agentwatch.request.gen_ai.output_tokens"] == billed_out
    assert rollup["agentwatch.request.gen_ai.tool_calls"] == 2 and rollup["agentwatch.request.gen_ai.transfers"] == 1
    assert "agentwatch.request.gen_ai.tool_errors" not in rollup
    # ADK's agent and tool metrics are kept
    calls = {p["attributes"]["gen_ai.agent.name"]: p["sum"] for p in _points(metrics, "gen_ai.invoke_agent.inference_calls")}
    assert calls == {"concierge": 1, "weather_agent": 2}, calls
    tool_points = _points(metrics, "gen_ai.execute_tool.duration")
    assert {p["attributes"]["gen_ai.tool.name"] for p in tool_points} == {"transfer_to_agent", "get_weather"}

    # capture off: no prompt text, no tool arguments, nothing of the question in any exported byte
    for bit in SECRET_BITS:
        assert bit.encode() not in raw, bit


@needs_adk
@pytest.mark.slow
def test_adk_tool_error_in_span_and_rollup(tmp_path, fake_gemini):
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(**rx.env(), **FAST_EXPORT, GEMINI_BASE_URL=fake_gemini.url, GEMINI_API_KEY=fake_gemini.key)
        service = start_service(tmp_path, env, command=["python", str(APP), "--port", "{port}"])
        try:
            status, body = service.request("POST", "/chat", {"message": "Weather? #fail-tool"}, timeout=60)
            assert status == 502, body
            assert rx.wait_for(lambda r: any(s["name"] == "POST /chat" for s in r.spans()), timeout=15)
        finally:
            service.terminate()
        spans = rx.spans()
    tool = next(s for s in spans if s["name"] == "execute_tool get_weather")
    assert tool["attributes"]["error.type"] == "ConnectionError" and tool["status"] == "ERROR"
    assert tool["attributes"]["gcp.vertex.agent.invocation_id"]
    chat = next(s for s in spans if s["name"] == "POST /chat")["attributes"]
    assert chat["agentwatch.request.gen_ai.tool_errors"] == 1 and chat["agentwatch.request.gen_ai.tool_calls"] == 2
    assert chat["agentwatch.request.gen_ai.calls"] == 2  # the answer after the tool was never asked for


@needs_adk
@pytest.mark.slow
def test_adk_content_opt_in_is_scrubbed_and_cut(tmp_path, fake_gemini):
    spans, _, raw, stderr, _ = _run(tmp_path, fake_gemini, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
                                    AGENTWATCH_GENAI_CONTENT_MAX_CHARS="40")
    assert "Traceback" not in stderr, stderr
    assert b"4111 1111 1111 1111" not in raw  # scrubbed wherever it went
    tool = next(s for s in spans if s["name"] == "execute_tool get_weather")
    captured = {k: v for k, v in tool["attributes"].items() if k in ("gen_ai.tool.call.arguments", "gen_ai.tool.call.result")}
    assert captured, tool["attributes"]  # the opt-in captures ADK's tool content
    for value in captured.values():
        assert len(value.split("...[truncated")[0]) <= 40, value  # AGENTWATCH_GENAI_CONTENT_MAX_CHARS, then the marker
    assert "[truncated" in captured["gen_ai.tool.call.result"]


def test_adk_instrumentor_costs_nothing_without_adk():
    """In an interpreter without ADK (the main venv), instrumenting imports no ADK and wraps nothing."""
    if HAS_ADK:
        pytest.skip("google-adk is installed here")
    code = (
        "import sys, time\n"
        "from agentwatch.instrumentors.adk import AgentwatchADKInstrumentor\n"
        "try:\n    AgentwatchADKInstrumentor().instrument()\nexcept ModuleNotFoundError:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('google.adk')))\n"
        "print(AgentwatchADKInstrumentor().instrumentation_dependencies())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert "google-adk" in out[1]


def test_content_policy_follows_the_genai_opt_in():
    from agentwatch.instrumentors import adk

    env: dict[str, str] = {"ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS": "true"}
    adk.apply_content_policy(env)
    assert env["ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS"] == "false" and env["ADK_TELEMETRY_IGNORE_RUN_CONFIG"] == "1"
    env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_and_event", "ADK_TELEMETRY_IGNORE_RUN_CONFIG": "0"}
    adk.apply_content_policy(env)
    assert env["ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS"] == "true" and env["ADK_TELEMETRY_IGNORE_RUN_CONFIG"] == "0"
    assert not adk.content_opted_in("EVENT_ONLY") and not adk.content_opted_in(None)



def test_rollup_and_report_count_tool_calls_failures_and_transfers(tmp_path):
    """execute_tool spans (ADK's or anyone's) end up per request on the server span through the real SDK, the
    roll-up processor and the file exporters, and in the terminal and HTML reports' per-route table."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from agentwatch.distro.file_exporter import OTLPJsonFileMetricExporter, OTLPJsonFileSpanExporter
    from agentwatch.distro.rollup import GenAIRollupSpanProcessor
    from agentwatch.report import render, render_html

    def run(directory: Path, tools: bool) -> None:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(GenAIRollupSpanProcessor())
        tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(str(directory))))
        reader = PeriodicExportingMetricReader(OTLPJsonFileMetricExporter(str(directory)), export_interval_millis=3_600_000)
        meter_provider = MeterProvider(metric_readers=[reader])
        tracer = tracer_provider.get_tracer("test")
        duration = meter_provider.get_meter("test").create_histogram("http.server.request.duration", unit="s")
        try:
            for fail in (False, True):
                with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER, attributes={"http.route": "/chat"}):
                    with tracer.start_as_current_span("generate_content m", kind=SpanKind.CLIENT, attributes={
                        "gen_ai.operation.name": "generate_content", "gen_ai.usage.input_tokens": 10,
                        "gen_ai.usage.output_tokens": 5, "agentwatch.gen_ai.usage.cost": 0.25}):
                        pass
                    if tools:
                        with tracer.start_as_current_span("execute_tool transfer_to_agent", attributes={
                            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "transfer_to_agent"}):
                            pass
                        with tracer.start_as_current_span("execute_tool get_weather", attributes={
                            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}) as tool:
                            if fail:
                                tool.set_status(Status(StatusCode.ERROR, "no station"))
                duration.record(0.1, {"http.route": "/chat", "http.response.status_code": 200})
            meter_provider.force_flush()
        finally:
            meter_provider.shutdown()
            tracer_provider.shutdown()

    run(tmp_path / "tools", tools=True)
    text = render(str(tmp_path / "tools"), width=120)
    assert re.search(r"/chat\s+2\s+2\s+4 \(1 failed, 2 transfers\)\s+0\.5 USD\s+0\.25 USD", text), text
    page = render_html(str(tmp_path / "tools"))
    assert "<th class=num>tool calls</th>" in page and "4 (1 failed, 2 transfers)" in page
    run(tmp_path / "plain", tools=False)  # without tool spans the table keeps its columns
    text = render(str(tmp_path / "plain"), width=120)
    assert re.search(r"/chat\s+2\s+2\s+0\.5 USD\s+0\.25 USD", text) and "tool calls" not in text


_CAPABILITY = """
import json, os, sys
from google.adk.telemetry import _genai_instrumentor as gi
from google.adk.telemetry.context import TelemetryConfig
from agentwatch.instrumentors.adk import AgentwatchADKInstrumentor
from agentwatch.instrumentors.gemini import GeminiInstrumentor
seen = {}
AgentwatchADKInstrumentor().instrument()
seen["adk only"] = gi.records_inference(TelemetryConfig())
GeminiInstrumentor().instrument()
seen["with gemini"] = gi.records_inference(TelemetryConfig())
GeminiInstrumentor().uninstrument()
seen["gemini removed"] = gi.records_inference(TelemetryConfig())
GeminiInstrumentor().instrument()
AgentwatchADKInstrumentor().uninstrument()
seen["adk removed"] = gi.records_inference(TelemetryConfig())
print(json.dumps(seen))
"""


@needs_adk
@pytest.mark.parametrize("schema, expected", [
    ("", {"adk only": False, "with gemini": True, "gemini removed": False, "adk removed": False}),
    # ADK's legacy schema records the inference itself whatever is installed: nothing to stand down
    ("1", {"adk only": False, "with gemini": False, "gemini removed": False, "adk removed": False}),
])
def test_adk_stands_down_only_while_agentwatch_records_gemini(schema, expected):
    """ADK's own question (``records_inference``) says yes exactly while agentwatch's Gemini wrapper is on
    the methods: never when nothing else records the call (no lost model calls), and not after uninstrument."""
    env = clean_env(ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=schema)
    done = subprocess.run([sys.executable, "-c", _CAPABILITY], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == expected
    if schema == "1":
        assert "counted twice" in done.stderr
