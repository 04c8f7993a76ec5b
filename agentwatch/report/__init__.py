"""``agentwatch report [DIR] [--html FILE]``: a summary of the OTLP/JSON-lines files, in the terminal
or as one self-contained HTML page.

Reads ``traces.jsonl``, ``metrics.jsonl`` and ``logs.jsonl`` (each after its
``.1`` rotation, oldest first) as written by
:mod:`agentwatch.distro.file_exporter` or by the Collector's ``file`` exporter,
and renders:

- a header: services, time covered, how much was recorded;
- recent requests: the last traces as span trees with the attributes that matter and a waterfall bar
  per span (when it ran within its trace);
- errors: the traces with error spans, with the request id a user would quote;
- metrics: request rate, errors and p50/p95/p99 latency per route from
  ``http.server.request.duration``, with a latency histogram per route; model cost per route; the agent pipeline (intents, retrieval,
  plans and critique verdicts, model calls) from the ``agentwatch.*`` and
  ``gen_ai.*`` metrics when present; then the latest value of every other metric;
- agents (per ``invoke_agent`` name: invocations, errors, model calls, tokens, tool calls, transfers,
  p50/p95) and tools (per tool name: calls, errors, error ratio, p50/p95, loop and unknown-tool signals,
  MCP ``tools/call`` too), when recorded;
- recent logs.

Reading streams line by line and keeps only bounded state (recent traces, the
latest point per metric series, the last log records), so a 2 x 64 MiB file
set is fine. Bad input never raises: unreadable lines are skipped and counted.

The package reads (:mod:`._read`), aggregates (:mod:`._aggregate`), computes the report's numbers once
(:mod:`._model`) and renders them for the terminal (:mod:`._render`, :mod:`._text`) or as HTML
(:mod:`._html`), so both show the same numbers; it depends on :mod:`agentwatch.semconv` for every telemetry name, never on the
instrumentors.
"""

from __future__ import annotations

import os

from agentwatch.report._agents import render_agents_tools
from agentwatch.report._aggregate import quantile
from agentwatch.report._model import Report, build
from agentwatch.report._render import render_errors, render_logs, render_metrics, render_traces
from agentwatch.report._text import Style, clean, fit, fmt_duration, local_time, plural

__all__ = ["quantile", "render", "render_html"]


def _build(directory: str, traces: int, logs: int) -> Report:
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"no telemetry directory at {directory!r} (set AGENTWATCH_FILE_DIR or pass the directory "
            "the otlp_json_file exporters wrote to)"
        )
    return build(directory, traces=traces, logs=logs)


def render(directory: str, *, traces: int = 5, logs: int = 15, color: bool = False, width: int = 0) -> str:
    """Render the report for the telemetry files in ``directory``.

    ``traces`` and ``logs`` bound how many recent traces and log records are
    shown; ``width`` > 0 cuts every line to that many terminal columns (0: no limit).
    Raises ``FileNotFoundError`` only when ``directory`` does not exist;
    missing, empty or partly corrupt files are reported in the text instead.
    """
    report = _build(directory, traces, logs)
    lines = [fit(line, width) for line in text_lines(report, traces, Style(color), width)]
    return "\n".join(lines) + "\n"


def render_html(directory: str, *, traces: int = 200, logs: int = 50) -> str:
    """The same report as one self-contained HTML page (inline CSS and JS, nothing fetched).

    The page renders the very :class:`Report` the terminal report renders, so the numbers agree.
    """
    from agentwatch.report._html import html_page

    return html_page(_build(directory, traces, logs))


def header_lines(report: Report, style: Style) -> list[str]:
    resources, window, traces = report.resources, report.window, report.traces
    lines = [style.bold("agentwatch report") + "  " + clean(report.directory)]
    if resources.services:
        services = [
            name + (f" {version}" if version != "-" else "") + (f" ({distro})" if distro != "-" else "")
            for name, version, distro in resources.services
        ]
        lines.append("  services:  " + clean(", ".join(services), 200))
        if len(resources.instances) > 1:
            lines.append(f"  instances: {len(resources.instances)} (service.instance.id)")
    if window.first and window.last:
        first, last = local_time(window.first), local_time(window.last)
        if first and last:
            end = last.strftime("%H:%M:%S") if first.date() == last.date() else last.strftime("%Y-%m-%d %H:%M:%S")
            span = fmt_duration((window.last - window.first) / 1e9)
            lines.append(f"  time:      {first.strftime('%Y-%m-%d %H:%M:%S')} → {end} ({span})")
    recorded = [
        f"{plural(traces.spans, 'span')} in {plural(len(traces.trace_ids), 'trace')}",
        f"{plural(report.metrics.points, 'metric point')} ({len(report.metrics.metrics)} metrics)",
        plural(report.logs.count, "log record"),
    ]
    lines.append("  recorded:  " + ", ".join(recorded))
    if traces.errors or report.logs.errors:
        lines.append("  " + style.red(
            f"errors:    {plural(traces.errors, 'error span')}, {plural(report.logs.errors, 'error log')}"
        ))
    unreadable = [s for s in (report.trace_stats, report.metric_stats, report.log_stats) if s.unreadable]
    if unreadable:
        total = sum(s.unreadable for s in unreadable)
        where = ", ".join(f"{s.name}: {s.unreadable}" for s in unreadable)
        lines.append("  " + style.yellow(f"note:      {total} unreadable {'line' if total == 1 else 'lines'} "
                                         f"skipped ({where})"))
    return lines


NOTHING_YET = (
    "nothing recorded yet: no traces.jsonl, metrics.jsonl or logs.jsonl here. Run the app with "
    "AGENTWATCH_EXPORT=local (or OTEL_TRACES_EXPORTER=otlp_json_file) and AGENTWATCH_FILE_DIR "
    "pointing at this directory."
)


def text_lines(report: Report, traces: int, style: Style, width: int = 0) -> list[str]:
    lines = header_lines(report, style)
    if not report.found:
        return [*lines, "", "  " + NOTHING_YET]
    for section in (
        render_traces(report, traces, style, width),
        render_errors(report, style),
        render_metrics(report, style, width),
        render_agents_tools(report.agents, report.tools, style),
        render_logs(report.logs, report.log_stats, style),
    ):
        if section:
            lines.append("")
            lines.extend(section)
    return lines
