"""The report's Agents and Tools sections: per agent name, what its ``invoke_agent`` spans say (the
roll-up's model calls, tokens and tool calls on them); per tool name, what ``gen_ai.execute_tool.duration``,
the MCP ``tools/call`` durations and the loop / unknown-tool counters say.

Both tables are built here once, as rows of plain text; the terminal (:func:`render_agents_tools`) and the
HTML page (``._html``) show the same rows. A section is absent when nothing of it was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentwatch import semconv as sc
from agentwatch.report._aggregate import AgentTotals, Metrics, Point, quantile
from agentwatch.report._text import Style, clean, fmt_ms, fmt_num, table

MCP_TOOL_CALL = "tools/call"  # the MCP method whose durations carry gen_ai.tool.name
_SOURCES = ((sc.GEN_AI_EXECUTE_TOOL_DURATION, "execute_tool"), (sc.MCP_CLIENT_OPERATION_DURATION, "mcp client"),
            (sc.MCP_SERVER_OPERATION_DURATION, "mcp server"))
TOOL_NOTE = ("loops: requests in which the model asked for the same tool with the same arguments 3 times; "
             "unknown: calls of a function the request did not declare")


def _sample_quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (linear interpolation between the closest ranks)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _histogram_ms(point: Point | None, q: float) -> float | None:
    if point is None or point.bounds is None or point.buckets is None:
        return None
    estimate = quantile(point.bounds, point.buckets, q, point.low, point.high)
    scale = {"s": 1000.0, "ms": 1.0}.get(point.unit or "s", 1000.0)
    return estimate * scale if estimate is not None else None


@dataclass
class AgentStats:
    name: str
    totals: AgentTotals
    p50: float | None  # ms
    p95: float | None


@dataclass
class ToolStats:
    name: str
    source: str  # execute_tool | mcp client | mcp server | model (a signal only: the tool never ran here)
    calls: int
    errors: int
    p50: float | None  # ms
    p95: float | None
    loops: float = 0
    unknown: float = 0

    @property
    def ratio(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def agent_stats(agents: dict[str, AgentTotals]) -> list[AgentStats]:
    return [AgentStats(name, totals, _sample_quantile(totals.durations, 0.5), _sample_quantile(totals.durations, 0.95))
            for name, totals in sorted(agents.items())]


def _by_tool(points: list[Point]) -> dict[str, list[Point]]:
    groups: dict[str, list[Point]] = {}
    for point in points:
        name = point.attributes.get(sc.GEN_AI_TOOL_NAME)
        groups.setdefault("-" if name is None else clean(str(name), 40), []).append(point)
    return groups


def tool_stats(metrics: Metrics) -> list[ToolStats]:
    """One row per tool name and where it was timed, plus the model's loop and unknown-tool signals."""
    rows: list[ToolStats] = []
    for metric, source in _SOURCES:
        points = [p for p in metrics.merged(metric) if p.kind == "histogram"]
        if source != "execute_tool":  # MCP: only tool calls (the other methods are not tools)
            points = [p for p in points if p.attributes.get(sc.MCP_METHOD_NAME) == MCP_TOOL_CALL]
        for name, group in sorted(_by_tool(points).items()):
            combined: Point | None = None
            for point in group:
                if combined is None:
                    combined = point.copy()
                else:
                    combined.add(point)
            rows.append(ToolStats(name, source, combined.count if combined else 0,
                                  sum(p.count for p in group if sc.ERROR_TYPE in p.attributes),
                                  _histogram_ms(combined, 0.5), _histogram_ms(combined, 0.95)))
    signals: dict[str, list[float]] = {}
    for index, metric in enumerate((sc.GENAI_TOOL_LOOPS_METRIC, sc.GENAI_UNKNOWN_TOOLS_METRIC)):
        for name, group in _by_tool(metrics.merged(metric)).items():
            signals.setdefault(name, [0.0, 0.0])[index] += sum(p.value or 0 for p in group)
    for name, (loops, unknown) in sorted(signals.items()):
        row = next((row for row in rows if row.name == name), None)
        if row is None:  # asked for, never run here (an undeclared tool, typically)
            row = ToolStats(name, "model", 0, 0, None, None)
            rows.append(row)
        row.loops += loops
        row.unknown += unknown
    return rows


AGENT_HEADER = ["agent", "invocations", "errors", "model calls", "input tokens", "output tokens", "tool calls",
                "tool errors", "transfers", "p50", "p95"]
TOOL_HEADER = ["tool", "via", "calls", "errors", "error %", "p50", "p95", "loops", "unknown"]


def agent_rows(agents: list[AgentStats]) -> list[list[str]]:
    """The Agents table's cells (the transfers column only where an agent transferred)."""
    transfers = any(agent.totals.transfers for agent in agents)
    rows = []
    for agent in agents:
        t = agent.totals
        row = [agent.name, str(t.invocations), str(t.errors), str(t.calls), str(t.input_tokens), str(t.output_tokens),
               str(t.tool_calls), str(t.tool_errors), str(t.transfers), fmt_ms(agent.p50), fmt_ms(agent.p95)]
        rows.append(row if transfers else row[:8] + row[9:])
    return rows


def agent_header(agents: list[AgentStats]) -> list[str]:
    transfers = any(agent.totals.transfers for agent in agents)
    return AGENT_HEADER if transfers else AGENT_HEADER[:8] + AGENT_HEADER[9:]


def tool_rows(tools: list[ToolStats]) -> list[list[str]]:
    rows = []
    for tool in tools:
        ratio = tool.ratio
        rows.append([tool.name, tool.source, str(tool.calls) if tool.source != "model" else "-", str(tool.errors),
                     f"{ratio:.1%}" if ratio is not None else "-", fmt_ms(tool.p50), fmt_ms(tool.p95),
                     fmt_num(tool.loops), fmt_num(tool.unknown)])
    return rows


def render_agents_tools(agents: list[AgentStats], tools: list[ToolStats], style: Style) -> list[str]:
    """The Agents and Tools sections for the terminal; nothing for a section with nothing recorded."""
    lines: list[str] = []
    if agents:
        rows = agent_rows(agents)
        for row in rows:  # a failed invocation or tool call stands out
            for column in (2, 7):
                if row[column] != "0":
                    row[column] = style.red(row[column])
        lines += [style.bold("Agents") + style.dim(f"  ({sc.INVOKE_AGENT} spans, with the roll-up's agentwatch.agent.* counts)"),
                  *table([agent_header(agents), *rows], right=set(range(1, len(rows[0]))))]
    if tools:
        if lines:
            lines.append("")
        rows = tool_rows(tools)
        for tool, row in zip(tools, rows):
            if tool.errors:
                row[3], row[4] = style.red(row[3]), style.red(row[4])
            for column, value in ((7, tool.loops), (8, tool.unknown)):
                if value:
                    row[column] = style.yellow(row[column])
        lines += [style.bold("Tools") + style.dim(f"  ({sc.GEN_AI_EXECUTE_TOOL_DURATION}, MCP {MCP_TOOL_CALL} durations, "
                                                  "tool-call signals)"),
                  *table([TOOL_HEADER, *rows], right=set(range(2, len(TOOL_HEADER)))),
                  *(style.dim("  " + note) for note in TOOL_NOTE.split("; "))]
    return lines
