"""Tool targets (issue 20, item 3): ``AGENTWATCH_TOOL_TARGETS`` turns the app's tool functions into
``execute_tool {name}`` spans and ``gen_ai.execute_tool.duration`` points, zero code, under
``opentelemetry-instrument`` (the script's own functions included), exporting to the real OTLP receiver."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from _service import BIN, FAST_EXPORT, clean_env
from otlp_receiver import OTLPReceiver

SCRIPT = textwrap.dedent('''\
    import json


    def get_weather(city):
        """Current weather for a city.

        Longer text that is not the description.
        """
        if city == "Atlantis":
            raise LookupError("no such city")
        return {"city": city, "temp": 21}


    class Shop:
        def lookup(self, order_id):
            return {"order": order_id, "status": "shipped"}


    def loop(calls):
        import wave  # noqa: F401 - a module not imported yet, as a server's start imports some
        # The registry is built after that import (a registry built at module level before it would
        # hold the plain functions: the documented limit of script targets).
        tools = {"get_weather": get_weather, "lookup_order": Shop().lookup}
        results = []
        for name, args in calls:
            try:
                results.append(tools[name](**args))
            except LookupError as error:
                results.append({"error": str(error)})
        return results


    if __name__ == "__main__":
        print("RESULT", json.dumps(loop([("get_weather", {"city": "Paris"}), ("lookup_order", {"order_id": 7}),
                                         ("get_weather", {"city": "Atlantis"})])))
''')


@pytest.mark.parametrize("module", ["__main__", "toolapp"])
def test_tool_spans_and_durations_from_a_script(tmp_path, module):
    path = tmp_path / "toolapp.py"
    path.write_text(SCRIPT)
    with OTLPReceiver(protocol="http") as receiver:
        env = clean_env(**receiver.env(), **FAST_EXPORT, OTEL_LOGS_EXPORTER="none", AGENTWATCH_ENDPOINT_CHECK="false",
                        AGENTWATCH_TOOL_TARGETS=f"{module}:get_weather,{module}:Shop.lookup=lookup_order")
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), "python", str(path)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        spans = [span for span in receiver.spans() if span["name"].startswith("execute_tool")]
        points = [m for m in receiver.metrics() if m.get("name") == "gen_ai.execute_tool.duration"]
    assert 'RESULT [{"city": "Paris", "temp": 21}, {"order": 7, "status": "shipped"}, {"error": "no such city"}]' in done.stdout
    assert [span["name"] for span in spans] == ["execute_tool get_weather", "execute_tool lookup_order", "execute_tool get_weather"]
    weather, lookup, failed = (span["attributes"] for span in spans)
    assert weather["gen_ai.operation.name"] == "execute_tool" and weather["gen_ai.tool.type"] == "function"
    assert weather["gen_ai.tool.name"] == "get_weather"
    assert weather["gen_ai.tool.description"] == "Current weather for a city."
    assert "gen_ai.tool.description" not in lookup and lookup["gen_ai.tool.name"] == "lookup_order"
    assert failed["error.type"] == "LookupError" and "error.type" not in weather
    assert all(span["kind"] in ("INTERNAL", 1, "SPAN_KIND_INTERNAL") for span in spans), [span["kind"] for span in spans]
    assert points, "the duration metric was exported"
    assert "does not exist" not in done.stderr and "never defined" not in done.stderr


def test_tool_spans_in_process(telemetry):
    """Decorator-free, in process: a module imported after instrumenting, an error passes through untouched."""
    import sys
    import types

    from agentwatch.instrumentors.tools import AgentwatchToolInstrumentor

    module = types.ModuleType("shoptools_x")
    exec(textwrap.dedent('''\
        async def refund(order_id):
            """Refund an order."""
            if order_id < 0:
                raise ValueError("bad id")
            return "ok"
    '''), module.__dict__)
    instrumentor = AgentwatchToolInstrumentor()
    import os
    os.environ["AGENTWATCH_TOOL_TARGETS"] = "shoptools_x:refund"
    try:
        sys.modules["shoptools_x"] = module
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
        import asyncio

        assert asyncio.run(module.refund(1)) == "ok"
        with pytest.raises(ValueError, match="bad id"):
            asyncio.run(module.refund(-1))
    finally:
        instrumentor.uninstrument()
        del os.environ["AGENTWATCH_TOOL_TARGETS"]
        sys.modules.pop("shoptools_x", None)
    spans = [span for span in telemetry.spans() if span.name == "execute_tool refund"]
    assert len(spans) == 2
    assert spans[0].attributes["gen_ai.tool.description"] == "Refund an order."
    assert spans[1].attributes["error.type"] == "ValueError"
    assert not hasattr(module.refund, "__wrapped__"), "uninstrument unwraps"


LOOP_SCRIPT = textwrap.dedent('''\
    import os

    from google import genai
    from google.genai import types


    def get_weather(city: str) -> dict:
        """Current weather for a city."""
        return {"city": city, "temp": 21}


    def run_agent(question: str) -> str:
        client = genai.Client(api_key=os.environ["GEMINI_API_KEY"],
                              http_options=types.HttpOptions(base_url=os.environ["GEMINI_BASE_URL"]))
        declaration = types.FunctionDeclaration(
            name="get_weather", description="Current weather for a city.",
            parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}))
        config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])])
        contents = [types.Content(role="user", parts=[types.Part(text=question)])]
        tools = {"get_weather": get_weather}
        for _ in range(4):
            response = client.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
            calls = response.function_calls or []
            if not calls:
                return response.text
            contents.append(response.candidates[0].content)
            for call in calls:
                result = tools[call.name](**call.args)
                contents.append(types.Content(role="user", parts=[
                    types.Part.from_function_response(name=call.name, response=result)]))
        return "gave up"


    if __name__ == "__main__":
        print("ANSWER", run_agent("weather in Paris?"))
''')


def test_a_hand_written_loop_gets_agent_and_tool_spans_with_counts(tmp_path, fake_gemini):
    """Zero code: invoke_agent around the loop with the model calls, tool calls and tokens under it."""
    path = tmp_path / "loop.py"
    path.write_text(LOOP_SCRIPT)
    with OTLPReceiver(protocol="http") as receiver:
        env = clean_env(**receiver.env(), **FAST_EXPORT, **fake_gemini.env(), OTEL_LOGS_EXPORTER="none",
                        AGENTWATCH_ENDPOINT_CHECK="false", AGENTWATCH_TOOL_TARGETS="__main__:get_weather",
                        AGENTWATCH_AGENT_TARGETS="__main__:run_agent=support")
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), "python", str(path)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        spans = receiver.spans()
    assert "ANSWER The get_weather tool says" in done.stdout, done.stdout
    agents = [span for span in spans if span["name"] == "invoke_agent support"]
    assert len(agents) == 1, sorted(span["name"] for span in spans)
    agent = agents[0]
    under = [span for span in spans if span["trace_id"] == agent["trace_id"] and span is not agent]
    models = [span for span in under if span["attributes"].get("gen_ai.operation.name") == "generate_content"
              and "agentwatch.gen_ai.round_trip" not in span["attributes"]]
    tools = [span for span in under if span["name"] == "execute_tool get_weather"]
    assert len(models) == 2 and len(tools) == 1
    assert tools[0]["parent_span_id"] == agent["span_id"]
    attributes = agent["attributes"]
    assert attributes["gen_ai.operation.name"] == "invoke_agent" and attributes["gen_ai.agent.name"] == "support"
    assert attributes["agentwatch.agent.gen_ai.calls"] == 2
    assert attributes["agentwatch.agent.tool_calls"] == 1 and attributes["agentwatch.agent.tool_errors"] == 0
    # The tool span links to the model call whose response asked for it (item 4); the fake Gemini
    # sends no call id (as the Gemini API often does not), so none is claimed.
    models.sort(key=lambda span: span["start_time_unix_nano"])
    assert [(link["trace_id"], link["span_id"]) for link in tools[0]["links"]] == [(agent["trace_id"], models[0]["span_id"])]
    # ... and the next model call, which sends the tool's result, links back to the tool span.
    assert [link["span_id"] for link in models[1]["links"]] == [tools[0]["span_id"]]
    assert not models[0]["links"]
    assert "gen_ai.tool.call.id" not in tools[0]["attributes"]
    assert attributes["agentwatch.agent.gen_ai.input_tokens"] == sum(m["attributes"]["gen_ai.usage.input_tokens"] for m in models)
    assert attributes["agentwatch.agent.gen_ai.output_tokens"] == sum(m["attributes"]["gen_ai.usage.output_tokens"] for m in models)


def test_the_demo_service_function_calling_loop(tmp_path, fake_gemini):
    """The demo's POST /chat/tools under opentelemetry-instrument with run_demo.py's targets: one trace
    server -> invoke_agent order-helper -> (model, execute_tool get_order_status, model)."""
    import sys

    from _service import APP_DIR, start_service

    sys.path.insert(0, str(APP_DIR.parent))
    try:
        from run_demo import AGENT_TARGETS
    finally:
        sys.path.remove(str(APP_DIR.parent))
    with OTLPReceiver(protocol="http") as receiver:
        env = clean_env(**receiver.env(), **FAST_EXPORT, **fake_gemini.env(), **AGENT_TARGETS, OTEL_LOGS_EXPORTER="none",
                        AGENTWATCH_ENDPOINT_CHECK="false")
        service = start_service(tmp_path, env)
        try:
            status, body = service.request("POST", "/chat/tools", {"message": "Where is my order?", "session_id": "s1"})
        finally:
            service.terminate()
        spans = receiver.spans()
    assert status == 200 and body["tool_calls"] == 1 and "shipped" in body["answer"], body
    agent = next(span for span in spans if span["name"] == "invoke_agent order-helper")
    tool = next(span for span in spans if span["name"] == "execute_tool get_order_status")
    assert tool["parent_span_id"] == agent["span_id"] and tool["trace_id"] == agent["trace_id"]
    assert tool["attributes"]["gen_ai.tool.description"] == "Status and carrier of a customer's order."
    assert agent["attributes"]["agentwatch.agent.gen_ai.calls"] == 2
    assert agent["attributes"]["agentwatch.agent.tool_calls"] == 1
    server = next(span for span in spans if span["span_id"] == agent["parent_span_id"])
    assert server["attributes"]["agentwatch.request.gen_ai.calls"] == 2


def test_a_call_id_sent_by_the_model_is_matched_by_name_and_arguments(telemetry):
    """Real google-genai response objects with call ids: each tool run takes the call with its own
    arguments (not merely the first of that name), once."""
    from google.genai import types

    from agentwatch.instrumentors._agents import tool_links

    tracer = telemetry.tracer_provider.get_tracer("t")
    response = types.GenerateContentResponse(candidates=[types.Candidate(content=types.Content(role="model", parts=[
        types.Part(function_call=types.FunctionCall(id="call-a", name="get_weather", args={"city": "Paris"})),
        types.Part(function_call=types.FunctionCall(id="call-b", name="get_weather", args={"city": "Oslo"})),
    ]))])
    with tracer.start_as_current_span("generate_content m") as model_span:
        tool_links.record(model_span, response)
    trace_id = model_span.get_span_context().trace_id
    oslo = tool_links.take(trace_id, "get_weather", {"city": "Oslo"})
    assert oslo is not None and oslo[0] == "call-b" and oslo[1].span_id == model_span.get_span_context().span_id
    assert tool_links.take(trace_id, "get_weather", {"city": "Oslo"})[0] == "call-a"  # by name once its own is taken
    assert tool_links.take(trace_id, "get_weather", {"city": "Oslo"}) is None
    assert tool_links.take(trace_id + 1, "get_weather", {}) is None


# A buggy loop: neither the model's turn nor the tool's result goes back to the model, so it asks again.
STUCK_SCRIPT = LOOP_SCRIPT.replace("contents.append(response.candidates[0].content)", "pass").replace(
    'contents.append(types.Content(role="user", parts=[', '(types.Content(role="user", parts=[')


def test_the_same_tool_call_three_times_in_a_request_is_a_loop_signal(tmp_path, fake_gemini):
    assert STUCK_SCRIPT != LOOP_SCRIPT
    path = tmp_path / "stuck.py"
    path.write_text(STUCK_SCRIPT)
    with OTLPReceiver(protocol="http") as receiver:
        env = clean_env(**receiver.env(), **FAST_EXPORT, **fake_gemini.env(), OTEL_LOGS_EXPORTER="none",
                        AGENTWATCH_ENDPOINT_CHECK="false", AGENTWATCH_AGENT_TARGETS="__main__:run_agent=support")
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), "python", str(path)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        spans = receiver.spans()
        metrics = [m for m in receiver.metrics() if m.get("name") == "agentwatch.gen_ai.tool_loops"]
    assert "ANSWER gave up" in done.stdout
    models = sorted((s for s in spans if s["name"].startswith("generate_content")), key=lambda s: s["start_time_unix_nano"])
    assert len(models) == 4
    events = [[e["name"] for e in m.get("events", [])] for m in models]
    assert events == [[], [], ["agentwatch.gen_ai.tool_loop"], []], events
    assert metrics, "the loop counter was exported"


def test_a_call_of_an_undeclared_function_is_an_unknown_tool_signal(telemetry):
    from google.genai import types

    from agentwatch.instrumentors._agents import tool_links

    response = types.GenerateContentResponse(candidates=[types.Candidate(content=types.Content(role="model", parts=[
        types.Part(function_call=types.FunctionCall(name="delete_account", args={})),
        types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"})),
    ]))])
    with telemetry.tracer_provider.get_tracer("t").start_as_current_span("generate_content m") as span:
        signals = tool_links.record(span, response, ["get_weather"])
    assert signals == [("unknown", "delete_account", 1)]
