"""``agentwatch report``'s Agents and Tools sections (issue 20, item 6).

The real thing first: a hand-written function-calling loop run zero-code under ``opentelemetry-instrument``
(``AGENTWATCH_TOOL_TARGETS`` / ``AGENTWATCH_AGENT_TARGETS``) against the fake Gemini, exported by the
distro's own local file exporters, read back by the report: agents with their model calls, tokens and tool
calls, a tool that failed, a loop and an unknown tool. Then what only other processes write (MCP
``tools/call`` durations, ADK's transfer spans) as OTLP/JSON lines, and the sections' absence.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from _service import BIN, clean_env
from test_report import _kv

from agentwatch import semconv as sc
from agentwatch.distro import rollup
from agentwatch.report import render, render_html
from agentwatch.report._model import build

SCRIPT = textwrap.dedent('''\
    import os

    from google import genai
    from google.genai import types


    def get_weather(city: str) -> dict:
        """Current weather for a city."""
        if city == "Atlantis":
            raise LookupError("no such city")
        return {"city": city, "temp": 21}


    def _client():
        return genai.Client(api_key=os.environ["GEMINI_API_KEY"],
                            http_options=types.HttpOptions(base_url=os.environ["GEMINI_BASE_URL"]))


    def _loop(question: str, remember: bool) -> str:
        client = _client()
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
            if remember:  # a buggy loop forgets the turn: the model asks again, the same call
                contents.append(response.candidates[0].content)
            for call in calls:
                function = tools.get(call.name)
                result = function(**call.args) if function else {"error": "unknown tool"}
                if remember:
                    contents.append(types.Content(role="user", parts=[
                        types.Part.from_function_response(name=call.name, response=result)]))
        return "gave up"


    def run_agent(question: str) -> str:
        return _loop(question, remember=True)


    def stuck_agent(question: str) -> str:
        return _loop(question, remember=False)


    def checker() -> None:
        try:
            get_weather("Atlantis")
        except LookupError:
            pass


    if __name__ == "__main__":
        print("ANSWER", run_agent("weather in Paris?"))
        print("ANSWER", run_agent("weather in Paris?"))
        print("ANSWER", run_agent("do it #call-delete_account"))
        print("ANSWER", stuck_agent("weather in Paris?"))
        checker()
''')


def _section(report: str, title: str) -> str:
    start = report.index("\n" + title + "  (")
    end = report.find("\n\n", start + 1)
    return report[start:end if end > 0 else None]  # "\n", the title, the header, the rows


def test_agents_and_tools_of_a_real_loop(tmp_path: Path, fake_gemini) -> None:
    out = tmp_path / "telemetry"
    (tmp_path / "loop.py").write_text(SCRIPT)
    env = clean_env(**fake_gemini.env(), AGENTWATCH_EXPORT="local", AGENTWATCH_FILE_DIR=str(out),
                    AGENTWATCH_ENDPOINT_CHECK="false", AGENTWATCH_TOOL_TARGETS="__main__:get_weather",
                    AGENTWATCH_AGENT_TARGETS="__main__:run_agent=support,__main__:stuck_agent=stuck,__main__:checker=checker")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), "python", str(tmp_path / "loop.py")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ANSWER The get_weather tool says") == 2 and "ANSWER gave up" in done.stdout, done.stdout

    report = render(str(out), color=False)
    agents, tools = _section(report, "Agents"), _section(report, "Tools")
    assert report.index("Agents  (") < report.index("Tools  (") < report.index("Recent logs")
    model = build(str(out))
    support = next(agent for agent in model.agents if agent.name == "support").totals
    # twice two model calls and one tool call, then a call of an undeclared tool answered by the app (two calls)
    assert (support.invocations, support.errors, support.calls, support.tool_calls, support.tool_errors) == (3, 0, 6, 2, 0)
    assert support.input_tokens > 0 and support.output_tokens > 0
    p50 = next(agent for agent in model.agents if agent.name == "support").p50
    assert p50 is not None and p50 > 0
    support_row = line_of(agents, "support")
    assert support_row[:8] == ["support", "3", "0", "6", str(support.input_tokens), str(support.output_tokens), "2", "0"]
    assert support_row[-2].endswith("ms") and support_row[-1].endswith("ms"), support_row
    # the stuck loop: four model calls asking for get_weather(Paris), four runs; the checker's tool failed
    stuck = line_of(agents, "stuck")
    assert stuck[:8] == ["stuck", "1", "0", "4", stuck[4], stuck[5], "4", "0"], stuck
    assert line_of(agents, "checker")[:8] == ["checker", "1", "0", "0", "0", "0", "1", "1"]
    assert "transfers" not in agents.splitlines()[2]  # no agent transferred: no column

    weather = line_of(tools, "get_weather")
    # 2 + 4 good runs and the failed one: 1 of 7 failed; the loop signal once, at the stuck agent's third call
    assert weather[:5] == ["get_weather", "execute_tool", "7", "1", "14.3%"] and weather[-2:] == ["1", "0"], weather
    assert line_of(tools, "delete_account") == ["delete_account", "model", "-", "0", "-", "-", "-", "0", "1"]
    assert "loops: requests in which the model asked" in tools

    # colours only when asked (the command turns them off for NO_COLOR and pipes); the width is kept
    coloured = render(str(out), color=True)
    assert "\x1b[31m1\x1b[0m" in next(line for line in coloured.splitlines() if re.match(r"\s+get_weather\s+execute_tool", line))
    assert "\x1b" not in report and all(len(line) <= 70 for line in render(str(out), width=70).splitlines())

    # the page shows the very same rows
    page = render_html(str(out))
    assert '<a href="#agents">agents</a>' in page and '<a href="#tools">tools</a>' in page
    for cls, section in (("agent-stats", agents), ("tool-stats", tools)):
        table = re.search(rf'<table class="{cls}">(.*?)</table>', page, re.S)
        assert table, cls
        cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1))]
        terminal = [re.split(r"\s{2,}", line.strip()) for line in section.splitlines()[2:] if not line.startswith(("  loops:", "  unknown:"))]
        assert cells == terminal


def line_of(section: str, *first: str) -> list[str]:
    """The cells of the row that starts with the cells ``first`` (cells hold no double blank)."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in section.splitlines()]
    found = [row for row in rows if row[:len(first)] == list(first)]
    assert len(found) == 1, (first, section)
    return found[0]


def test_the_catalogue_names_are_the_roll_up_processors() -> None:
    assert (rollup.AGENT_CALLS, rollup.AGENT_INPUT, rollup.AGENT_OUTPUT, rollup.AGENT_TOOL_CALLS, rollup.AGENT_TOOL_ERRORS) == (
        sc.AGENT_GENAI_CALLS, sc.AGENT_GENAI_INPUT_TOKENS, sc.AGENT_GENAI_OUTPUT_TOKENS, sc.AGENT_TOOL_CALLS,
        sc.AGENT_TOOL_ERRORS)
    assert rollup.TRANSFER_TOOLS == {sc.TRANSFER_TOOL} and rollup.TOOL == sc.EXECUTE_TOOL


# --------------------------------------------------------------------------- what other processes write

T0 = 1_700_000_000_000_000_000


def _span(name: str, span_id: str, attributes: dict[str, Any], ms: int = 10, error: bool = False) -> dict[str, Any]:
    return {"traceId": "ab" * 16, "spanId": span_id, "name": name, "kind": 1, "startTimeUnixNano": str(T0),
            "endTimeUnixNano": str(T0 + ms * 1_000_000), "attributes": [_kv(k, v) for k, v in attributes.items()],
            "status": {"code": 2} if error else {}}


def _histogram(name: str, attributes: dict[str, Any], buckets: list[int]) -> dict[str, Any]:
    bounds = [0.01, 0.1, 1.0]
    return {"name": name, "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [{
        "attributes": [_kv(k, v) for k, v in attributes.items()], "startTimeUnixNano": str(T0),
        "timeUnixNano": str(T0 + 10**9), "count": str(sum(buckets)), "sum": 0.05 * sum(buckets),
        "bucketCounts": [str(b) for b in buckets], "explicitBounds": bounds}]}}


def _write(directory: Path, spans: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> None:
    resource = {"attributes": [_kv("service.name", "svc")]}
    (directory / "traces.jsonl").write_text(json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "s"}, "spans": spans}]}]}) + "\n")
    (directory / "metrics.jsonl").write_text(json.dumps(
        {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"scope": {"name": "s"}, "metrics": metrics}]}]}) + "\n")


def test_adk_transfers_mcp_tool_calls_and_hostile_names(tmp_path: Path) -> None:
    hostile = "evil\x1b[31m<script>"
    spans = [
        _span("invoke_agent concierge", "01" * 8, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "concierge",
                                                   sc.AGENT_GENAI_CALLS: 2, sc.AGENT_TOOL_CALLS: 1}, ms=40),
        _span("execute_tool transfer_to_agent", "02" * 8, {"gen_ai.operation.name": "execute_tool",
                                                           "gen_ai.tool.name": "transfer_to_agent",
                                                           "gen_ai.agent.name": "concierge"}),
        _span("invoke_agent billing", "03" * 8, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "billing"},
              ms=20, error=True),
        _span(f"invoke_agent {hostile}", "04" * 8, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": hostile}),
    ]
    call = {"mcp.method.name": "tools/call", "gen_ai.tool.name": "lookup"}
    metrics = [
        _histogram("mcp.client.operation.duration", call, [3, 1, 0, 0]),
        _histogram("mcp.client.operation.duration", {**call, "error.type": "tool_error"}, [0, 1, 0, 0]),
        _histogram("mcp.client.operation.duration", {"mcp.method.name": "tools/list"}, [5, 0, 0, 0]),  # not a tool
        _histogram("mcp.server.operation.duration", call, [0, 5, 0, 0]),
    ]
    _write(tmp_path, spans, metrics)
    report = render(str(tmp_path))
    agents, tools = _section(report, "Agents"), _section(report, "Tools")
    assert "transfers" in agents
    assert line_of(agents, "concierge")[:9] == ["concierge", "1", "0", "2", "0", "0", "1", "0", "1"]
    assert line_of(agents, "billing")[:3] == ["billing", "1", "1"]
    assert "\x1b" not in report and "evil\\x1b[31m<script>" in agents
    assert line_of(tools, "lookup", "mcp client")[:5] == ["lookup", "mcp client", "5", "1", "20.0%"]
    assert line_of(tools, "lookup", "mcp server")[:5] == ["lookup", "mcp server", "5", "0", "0.0%"]
    assert "tools/list" not in tools and len(tools.splitlines()) == 1 + 1 + 1 + 2 + 2  # "", title, header, rows, notes
    page = render_html(str(tmp_path))
    assert "<script>" not in page.replace("<script>(function", "").replace('<script type="application/json"', "")
    assert "evil\\x1b[31m&lt;script&gt;" in page


def test_no_agents_or_tools_sections_without_their_telemetry(tmp_path: Path) -> None:
    _write(tmp_path, [_span("GET /", "01" * 8, {"http.route": "/"})],
           [_histogram("http.server.request.duration", {"http.route": "/"}, [1, 0, 0, 0])])
    report, page = render(str(tmp_path)), render_html(str(tmp_path))
    assert "Agents" not in report and "Tools" not in report
    assert 'id="agents"' not in page and 'id="tools"' not in page and "#agents" not in page


def test_agent_durations_stay_bounded(tmp_path: Path) -> None:
    """A file with 5000 invocations of one agent: every one counted, a bounded sample of durations kept."""
    from agentwatch.report._aggregate import _MAX_DURATIONS

    spans = [_span("invoke_agent busy", f"{index + 1:016x}", {"gen_ai.operation.name": "invoke_agent",
                                                             "gen_ai.agent.name": "busy"}, ms=1 + index % 100)
             for index in range(5000)]
    _write(tmp_path, spans, [])
    model = build(str(tmp_path))
    (busy,) = model.agents
    assert busy.totals.invocations == 5000 and len(busy.totals.durations) == _MAX_DURATIONS < 5000
    assert busy.p50 is not None and 40 <= busy.p50 <= 60 and busy.p95 is not None and 90 <= busy.p95 <= 100
