"""``agentwatch report DIR``: a terminal summary of the OTLP/JSON-lines files.

Reads ``traces.jsonl``, ``metrics.jsonl`` and ``logs.jsonl`` (each after its
``.1`` rotation, oldest first) as written by
:mod:`agentwatch.distro.file_exporter` or by the Collector's ``file`` exporter,
and renders:

- a header: services, time covered, how much was recorded;
- recent requests: the last traces as span trees with the attributes that matter;
- metrics: request rate, errors and p50/p95/p99 latency per route from
  ``http.server.request.duration``; the agent pipeline (intents, retrieval,
  plans and critique verdicts, model calls) from the ``agentwatch.*`` and
  ``gen_ai.*`` metrics when present; then the latest value of every other metric;
- recent logs.

Reading streams line by line and keeps only bounded state (recent traces, the
latest point per metric series, the last log records), so a 2 x 64 MiB file
set is fine. Bad input never raises: unreadable lines are skipped and counted.

The package reads (:mod:`._read`), aggregates (:mod:`._aggregate`) and renders (:mod:`._render`,
:mod:`._text`); it depends on :mod:`agentwatch.semconv` for every telemetry name, never on the
instrumentors.
"""

from __future__ import annotations

import os

from agentwatch.report._aggregate import load_logs, load_metrics, load_traces, quantile
from agentwatch.report._read import LOGS_FILE, METRICS_FILE, TRACES_FILE, FileStats, Resources, Window
from agentwatch.report._render import render_logs, render_metrics, render_traces
from agentwatch.report._text import Style, clean, fmt_duration, local_time, plural

__all__ = ["quantile", "render"]


def render(directory: str, *, traces: int = 5, logs: int = 15, color: bool = False) -> str:
    """Render the report for the telemetry files in ``directory``.

    ``traces`` and ``logs`` bound how many recent traces and log records are
    shown. Raises ``FileNotFoundError`` only when ``directory`` does not exist;
    missing, empty or partly corrupt files are reported in the text instead.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"no telemetry directory at {directory!r} (set AGENTWATCH_FILE_DIR or pass the directory "
            "the otlp_json_file exporters wrote to)"
        )
    style = Style(color)
    resources = Resources()
    window = Window()
    trace_stats, metric_stats, log_stats = FileStats(TRACES_FILE), FileStats(METRICS_FILE), FileStats(LOGS_FILE)
    trace_data = load_traces(directory, traces, trace_stats, resources, window)
    metric_data = load_metrics(directory, metric_stats, resources, window)
    log_data = load_logs(directory, logs, log_stats, resources, window)

    lines = [style.bold("agentwatch report") + "  " + clean(os.path.abspath(directory))]
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
        f"{plural(trace_data.spans, 'span')} in {plural(len(trace_data.trace_ids), 'trace')}",
        f"{plural(metric_data.points, 'metric point')} ({len(metric_data.metrics)} metrics)",
        plural(log_data.count, "log record"),
    ]
    lines.append("  recorded:  " + ", ".join(recorded))
    if trace_data.errors or log_data.errors:
        lines.append("  " + style.red(
            f"errors:    {plural(trace_data.errors, 'error span')}, {plural(log_data.errors, 'error log')}"
        ))
    unreadable = [s for s in (trace_stats, metric_stats, log_stats) if s.unreadable]
    if unreadable:
        total = sum(s.unreadable for s in unreadable)
        where = ", ".join(f"{s.name}: {s.unreadable}" for s in unreadable)
        lines.append("  " + style.yellow(f"note:      {total} unreadable {'line' if total == 1 else 'lines'} "
                                         f"skipped ({where})"))
    if not (trace_stats.found or metric_stats.found or log_stats.found):
        lines.append("")
        lines.append(
            "  nothing recorded yet: no traces.jsonl, metrics.jsonl or logs.jsonl here. Run the app with "
            "AGENTWATCH_EXPORT=local (or OTEL_TRACES_EXPORTER=otlp_json_file) and AGENTWATCH_FILE_DIR "
            "pointing at this directory."
        )
        return "\n".join(lines) + "\n"

    for section in (
        render_traces(trace_data, traces, trace_stats, style),
        render_metrics(metric_data, metric_stats, style),
        render_logs(log_data, log_stats, style),
    ):
        lines.append("")
        lines.extend(section)
    return "\n".join(lines) + "\n"
