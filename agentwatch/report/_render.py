"""Rendering the aggregated telemetry: the recent requests as span trees, the request and agent
pipeline tables, the latest value of every other metric, the recent logs."""

from __future__ import annotations

import json
from typing import Any

from agentwatch import semconv as sc
from agentwatch.report._aggregate import SPAN_KEYS, Logs, Metric, Metrics, Point, Span
from agentwatch.report._model import (
    Report,
    Request,
    Requests,
    attr,
    combine,
    fmt_cost,
    group_by,
    quantile_ms,
    sum_value,
)
from agentwatch.report._read import FileStats, as_float, as_int
from agentwatch.report._resilience import render_resilience
from agentwatch.report._text import (
    VALUE_WIDTH,
    Style,
    bar,
    clean,
    fmt_clock,
    fmt_duration,
    fmt_ms,
    fmt_num,
    fmt_value,
    plural,
    table,
    unit_label,
)

_TRUNCATE_KEYS = {sc.DB_QUERY_TEXT: 60, sc.DB_STATEMENT: 60}
_MAX_OTHER_METRICS = 40
_MAX_ERRORS_SHOWN = 10  # in the terminal; the HTML page lists every error trace kept


# --------------------------------------------------------------------------- traces


def _documents_text(value: Any) -> str | None:
    """``gen_ai.retrieval.documents`` (JSON ``[{id, score}]``) as ``[kb-1 0.91, kb-2, ...]``."""
    try:
        documents = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(documents, list):
        return None
    items = []
    for document in documents:
        if not isinstance(document, dict):
            return None
        text = clean(str(document.get("id", "?")), 40)
        score = as_float(document.get("score"))
        if score is not None:
            text += f" {fmt_num(score)}"
        items.append(text)
    return "[" + ", ".join(items) + "]"


def _span_line(span: Span, style: Style) -> str:
    parts = [style.bold(span.name), style.dim(span.kind), style.dim(fmt_ms(span.duration_ms))]
    if span.error:
        parts.append(style.red("ERROR" + (f" {span.status_message}" if span.status_message else "")))
    attributes = span.attributes
    for group in SPAN_KEYS:
        for key in group:
            if key in attributes:
                value = fmt_value(attributes[key], _TRUNCATE_KEYS.get(key, VALUE_WIDTH))
                if key == sc.GEN_AI_RETRIEVAL_DOCUMENTS:
                    value = clean(_documents_text(attributes[key]) or value, VALUE_WIDTH)
                text = f"{key}={value}"
                if key == sc.HTTP_RESPONSE_STATUS_CODE and (as_int(attributes[key]) or 0) >= 500:
                    text = style.red(text)
                parts.append(text)
                break
    for key in sorted(k for k in attributes if k.startswith(sc.NAMESPACE)):
        parts.append(f"{clean(key, 60)}={fmt_value(attributes[key])}")
    return "  ".join(parts)


def bar_width(width: int) -> int:
    """Cells of a waterfall bar: a fifth of the terminal, within 10..30."""
    return min(30, max(10, (width - 4) // 5)) if width > 0 else 24


def _request_lines(request: Request, style: Style, cells: int) -> list[str]:
    header = [
        "trace " + style.cyan(request.trace_id),
        fmt_clock(request.start),
        clean(", ".join(request.services), 60),
        style.dim(fmt_ms(request.total_ms)),
        plural(len(request.rows) + request.hidden, "span"),
    ]
    if request.errors:
        header.append(style.red(f"{request.errors} error" + ("" if request.errors == 1 else "s")))
    if request.request_id:
        header.append("request " + style.cyan(request.request_id))
    lines = ["  " + "  ".join(header)]
    for row in request.rows:
        note = style.dim("  (parent span not recorded)") if row.orphan else ""
        drawn = bar(row.offset, row.length, cells)
        drawn = style.red(drawn) if row.span.error else style.cyan(drawn)
        lines.append("    " + drawn + "  " + row.prefix + _span_line(row.span, style) + note)
    if request.hidden:
        lines.append("    " + style.dim(f"… and {plural(request.hidden, 'more span')}"))
    return lines


def render_traces(report: Report, count: int, style: Style, width: int = 0) -> list[str]:
    title = "Recent requests"
    traces, stats = report.traces, report.trace_stats
    if not stats.found:
        return [style.bold(title), "  no traces recorded (no traces.jsonl)"]
    if traces.spans == 0:
        return [style.bold(title), "  no traces recorded (traces.jsonl is empty)"]
    if count <= 0:
        return [style.bold(title), f"  {plural(len(traces.trace_ids), 'trace')} recorded (none requested)"]
    chosen = report.recent[-count:]
    lines = [style.bold(f"{title} (last {len(chosen)} of {len(traces.trace_ids)} traces, oldest first)")
             + style.dim("  bars: when each span ran within its trace")]
    for request in chosen:
        lines.append("")
        lines.extend(_request_lines(request, style, bar_width(width)))
    return lines


def render_errors(report: Report, style: Style) -> list[str]:
    """The traces that failed, newest last, with the request id a user would quote."""
    traces = report.traces
    if not traces.error_trace_count:
        return []
    shown = report.errors[-_MAX_ERRORS_SHOWN:]
    title = f"Errors ({plural(traces.error_trace_count, 'trace')} with error spans"
    title += f", last {len(shown)})" if len(shown) < traces.error_trace_count else ")"
    rows = [["time", "request id", "route", "status", "trace"]]
    causes = []
    for entry in shown:
        rows.append([fmt_clock(entry.time), style.cyan(entry.request_id or "-"), entry.route or "-",
                     style.red(entry.status) if entry.status else "-", entry.trace_id])
        name, message = entry.spans[0] if entry.spans else ("-", "")
        more = f" (+{entry.count - 1} more)" if entry.count > 1 else ""
        causes.append("      " + style.red(f"{name}: {message}" if message else name) + style.dim(more))
    lines = table(rows, right=set())
    # each failure's likely cause on its own line, under its row: readable on a narrow terminal
    return [style.bold(title), lines[0], *(line for pair in zip(lines[1:], causes) for line in pair)]


# --------------------------------------------------------------------------- metrics


def _render_requests(found: Requests, style: Style) -> list[str]:
    lines = [
        style.bold("Requests")
        + style.dim(f"  ({found.metric}, {plural(found.series, 'series')} over {fmt_duration(found.seconds)})"),
    ]
    error_rate = found.errors / found.total if found.total else 0.0
    summary = f"  {plural(found.total, 'request')}, {found.rate(found.total)}, {plural(found.errors, 'error')} (5xx)"
    summary += ", error rate " + (style.red(f"{error_rate:.1%}") if found.errors else f"{error_rate:.1%}")
    lines.append(summary)
    lines.append("")
    rows = [["route", "method", "status", "count", "rate"]]
    for row in found.rows:
        status_cell = style.red(row.status) if row.status.isdigit() and int(row.status) >= 500 else row.status
        rows.append([clean(row.route, 60), row.method, status_cell, str(row.count), found.rate(row.count)])
    lines.extend(table(rows, right={3, 4}))
    lines.append("")
    rows = [["route", "count", "errors", "error %", "p50", "p95", "p99", "mean"]]
    for route in found.routes:
        rows.append([clean(route.route, 60), str(route.count),
                     style.red(str(route.errors)) if route.errors else "0",
                     f"{route.errors / route.count:.1%}" if route.count else "-",
                     fmt_ms(route.p50), fmt_ms(route.p95), fmt_ms(route.p99), fmt_ms(route.mean)])
    lines.extend(table(rows, right={1, 2, 3, 4, 5, 6, 7}))
    lines.append(style.dim("  latency percentiles are estimated from histogram buckets (linear interpolation)"))
    return lines


def render_histograms(found: Requests, style: Style, width: int = 0) -> list[str]:
    """One bar per latency bucket and route, first to last non-empty bucket."""
    routes = [route for route in found.routes if route.histogram is not None]
    if not routes:
        return []
    lines = [style.bold("Latency per route") + style.dim(f"  ({found.metric} buckets, all processes)")]
    label_width = max(len(label) for route in routes for label in route.histogram.labels)  # pyright: ignore[reportOptionalMemberAccess]
    count_width = max(len(str(count)) for route in routes for count in route.histogram.counts)  # pyright: ignore[reportOptionalMemberAccess]
    cells = min(40, max(10, width - label_width - count_width - 10)) if width > 0 else 40
    for route in routes:
        histogram = route.histogram
        assert histogram is not None
        top = max(histogram.counts) or 1
        lines.append(f"  {clean(route.route, 60)}  " + style.dim(plural(route.count, "request")))
        for label, count in zip(histogram.labels, histogram.counts):
            drawn = bar(0.0, count / top, cells) if count else " " * cells
            lines.append(f"    {label:>{label_width}}  {style.cyan(drawn)}  {count:>{count_width}}")
    return lines


def render_route_costs(report: Report, style: Style) -> list[str]:
    """Model cost per route, from the per-request totals on the server spans."""
    priced = [(route, totals) for route, totals in report.route_costs if totals.priced]
    if not priced:
        return []
    unit = report.cost_unit or "USD"
    tools = any(totals.tools for _route, totals in priced)  # the tools column only where tools ran
    rows = [["route", "requests", "model calls", *(["tool calls"] if tools else []), "cost", "cost/request"]]
    for route, totals in priced:
        rows.append([clean(route, 60), str(totals.requests), str(totals.calls), *([totals.tools_cell()] if tools else []),
                     fmt_cost(totals.cost, unit), fmt_cost(totals.cost / totals.requests, unit)])
    return [style.bold("Cost per route") + style.dim(f"  ({sc.REQUEST_GENAI_COST} on the server spans)"),
            *table(rows, right=set(range(1, len(rows[0]))))]


# ----------------------------------------------------------------- agent pipeline

_AGENT_METRICS = (
    sc.INTENT_CLASSIFICATIONS_METRIC, sc.RETRIEVAL_DURATION_METRIC, sc.PLAN_DURATION_METRIC,
    sc.CRITIQUE_VERDICTS_METRIC, sc.GEN_AI_CLIENT_OPERATION_DURATION,
)


def _timed_cells(points: list[Point]) -> tuple[str, str, str, str]:
    """Count, errors (points with ``error.type``), p50 and p95 of a group of duration points, as table cells."""
    combined = combine(points)
    errors = sum(p.count for p in points if sc.ERROR_TYPE in p.attributes)
    return (str(combined.count if combined else 0), str(errors),
            fmt_ms(quantile_ms(combined, 0.5)), fmt_ms(quantile_ms(combined, 0.95)))


def _mean(point: Point | None) -> float | None:
    if point is None or not point.count or point.total is None:
        return None
    return point.total / point.count


def _distribution(point: Point | None) -> str:
    """Integer-valued histogram as ``1: 16  2: 14  3: 3`` (a bucket wider than one shows as a range)."""
    if point is None or point.bounds is None or point.buckets is None:
        return "-"
    parts = []
    for index, count in enumerate(point.buckets):
        if count <= 0:
            continue
        if index == len(point.bounds):
            label = f">{fmt_num(point.bounds[-1])}"
        else:
            upper = point.bounds[index]
            lower = point.bounds[index - 1] if index else None
            if lower is None or upper - lower <= 1:
                label = fmt_num(upper) if lower is not None or upper <= 1 else f"≤{fmt_num(upper)}"
            else:
                label = f"{fmt_num(lower + 1)}-{fmt_num(upper)}"
        parts.append(f"{label}: {count}")
    return "  ".join(parts) or "-"


def render_agent(report: Report, style: Style) -> list[str]:
    """Intents, retrieval, plans and critiques, model calls: the ``/chat`` pipeline in numbers."""
    metrics = report.metrics
    if not any(name in metrics.metrics for name in _AGENT_METRICS):
        return []
    lines = [style.bold("Agent pipeline") + style.dim("  (agentwatch.* and gen_ai.* metrics)")]

    classifications = metrics.merged(sc.INTENT_CLASSIFICATIONS_METRIC)
    if classifications:
        confidence = group_by(metrics.merged(sc.INTENT_CONFIDENCE_METRIC), sc.INTENT_NAME)
        low_points = metrics.merged(sc.INTENT_LOW_CONFIDENCE_METRIC)
        low = group_by(low_points, sc.INTENT_NAME)
        by_intent = group_by(classifications, sc.INTENT_NAME)
        total = sum_value(classifications)
        classifiers = sorted(group_by(classifications, sc.INTENT_CLASSIFIER))
        lines.append(f"  intents ({clean(', '.join(classifiers), 60)}): {fmt_num(total)} classified, "
                     f"{fmt_num(sum_value(low_points))} below the confidence threshold")
        rows = [["intent", "count", "share", "mean confidence", "low confidence"]]
        for intent, points in sorted(by_intent.items(), key=lambda item: (-sum_value(item[1]), item[0])):
            count = sum_value(points)
            mean = _mean(combine(confidence.get(intent, [])))
            rows.append([intent, fmt_num(count), f"{count / total:.0%}" if total else "-",
                         f"{mean:.2f}" if mean is not None else "-", fmt_num(sum_value(low.get(intent, [])))])
        lines.extend(table(rows, right={1, 2, 3, 4}, indent="    "))

    durations = metrics.merged(sc.RETRIEVAL_DURATION_METRIC)
    if durations:
        documents = group_by(metrics.merged(sc.RETRIEVAL_DOCUMENTS_METRIC), sc.GEN_AI_DATA_SOURCE_ID)
        empty = group_by(metrics.merged(sc.RETRIEVAL_EMPTY_METRIC), sc.GEN_AI_DATA_SOURCE_ID)
        top = group_by(metrics.merged(sc.RETRIEVAL_TOP_SCORE_METRIC), sc.GEN_AI_DATA_SOURCE_ID)
        rows = [["data source", "retrievals", "errors", "docs/retrieval", "empty", "mean top score", "p50", "p95"]]
        for source, points in sorted(group_by(durations, sc.GEN_AI_DATA_SOURCE_ID).items()):
            count, errors, p50, p95 = _timed_cells(points)
            docs_mean = _mean(combine(documents.get(source, [])))
            top_mean = _mean(combine(top.get(source, [])))
            rows.append([source, count, errors,
                         fmt_num(docs_mean) if docs_mean is not None else "-",
                         fmt_num(sum_value(empty.get(source, []))),
                         f"{top_mean:.3f}" if top_mean is not None else "-",
                         p50, p95])
        lines.append("  retrieval")
        lines.extend(table(rows, right={1, 2, 3, 4, 5, 6, 7}, indent="    "))

    plans = metrics.merged(sc.PLAN_DURATION_METRIC)
    if plans:
        iterations = group_by(metrics.merged(sc.PLAN_ITERATIONS_METRIC), sc.GEN_AI_AGENT_NAME)
        first = group_by(metrics.merged(sc.PLAN_FIRST_TRY_ACCEPTANCE_METRIC), sc.GEN_AI_AGENT_NAME)
        rows = [["agent", "plans", "errors", "iterations: plans", "mean", "accepted first try", "p50", "p95"]]
        for agent, points in sorted(group_by(plans, sc.GEN_AI_AGENT_NAME).items()):
            count, errors, p50, p95 = _timed_cells(points)
            agent_iterations = combine(iterations.get(agent, []))
            mean = _mean(agent_iterations)
            firsts = first.get(agent, [])
            accepted = sum(p.value or 0 for p in firsts if attr(p, sc.PLAN_ACCEPTED) in (True, "true", "True"))
            judged = sum_value(firsts)
            rows.append([agent, count, errors, _distribution(agent_iterations),
                         f"{mean:.2f}" if mean is not None else "-",
                         f"{fmt_num(accepted)}/{fmt_num(judged)} ({accepted / judged:.0%})" if judged else "-",
                         p50, p95])
        lines.append("  plans")
        lines.extend(table(rows, right={1, 2, 4, 5, 6, 7}, indent="    "))

    verdicts = metrics.merged(sc.CRITIQUE_VERDICTS_METRIC)
    if verdicts:
        rows = [["critic", "critiques", "accepted", "rejected"]]
        for critic, points in sorted(group_by(verdicts, sc.GEN_AI_EVALUATION_NAME).items()):
            by_verdict = group_by(points, sc.CRITIQUE_VERDICT)
            rows.append([critic, fmt_num(sum_value(points)), fmt_num(sum_value(by_verdict.get("accepted", []))),
                         fmt_num(sum_value(by_verdict.get("rejected", [])))])
        lines.append("  critique verdicts")
        lines.extend(table(rows, right={1, 2, 3}, indent="    "))

    models = report.models
    if models:
        rows = [["model", "calls", "errors", "input tokens", "output tokens", "cost", "p50", "p95"]]
        for model in models:
            rows.append([model.model, str(model.calls), str(model.errors), fmt_num(model.input_tokens),
                         fmt_num(model.output_tokens), fmt_cost(model.cost, report.cost_unit),
                         fmt_ms(model.p50), fmt_ms(model.p95)])
        lines.append("  model calls")
        lines.extend(table(rows, right={1, 2, 3, 4, 5, 6, 7}, indent="    "))
    return lines


def _render_caches_queues(metrics: Metrics, style: Style) -> list[str]:
    """Named caches (lookups, hit ratio, size) and queues (depth, oldest wait): latest values."""
    lookups = metrics.merged(sc.CACHE_LOOKUPS_METRIC)
    depths = metrics.merged(sc.QUEUE_DEPTH_METRIC)
    if not lookups and not depths:
        return []
    lines = [style.bold("Caches and queues") + style.dim("  (agentwatch.cache.* and agentwatch.queue.* metrics)")]
    if lookups:
        sizes = group_by(metrics.merged(sc.CACHE_SIZE_METRIC), sc.CACHE_NAME)
        capacities = group_by(metrics.merged(sc.CACHE_MAX_SIZE_METRIC), sc.CACHE_NAME)
        rows = [["cache", "lookups", "hits", "misses", "hit ratio", "size", "capacity"]]
        for cache, points in sorted(group_by(lookups, sc.CACHE_NAME).items()):
            by_result = group_by(points, sc.CACHE_RESULT)
            hits, misses = sum_value(by_result.get("hit", [])), sum_value(by_result.get("miss", []))
            total = hits + misses
            ratio = f"{hits / total:.0%}" if total else "-"
            if total and hits / total < 0.5:
                ratio = style.yellow(ratio)
            size, capacity = sizes.get(cache), capacities.get(cache)
            rows.append([cache, fmt_num(total), fmt_num(hits), fmt_num(misses), ratio,
                         fmt_num(sum_value(size)) if size else "-", fmt_num(sum_value(capacity)) if capacity else "-"])
        lines.append("  caches")
        lines.extend(table(rows, right={1, 2, 3, 4, 5, 6}, indent="    "))
    if depths:
        ages = metrics.metrics.get(sc.QUEUE_OLDEST_AGE_METRIC)
        oldest: dict[str, float] = {}
        for point in ages.series.values() if ages is not None else ():
            name = clean(str(point.attributes.get(sc.QUEUE_NAME, "-")), 40)
            oldest[name] = max(oldest.get(name, 0.0), point.value or 0.0)
        rows = [["queue", "waiting", "oldest wait"]]
        for queue, points in sorted(group_by(depths, sc.QUEUE_NAME).items()):
            rows.append([queue, fmt_num(sum_value(points)), f"{fmt_num(oldest[queue])} s" if queue in oldest else "-"])
        lines.append("  queues")
        lines.extend(table(rows, right={1, 2}, indent="    "))
    return lines


def _metric_summary(metric: Metric, points: list[Point]) -> str:
    unit = unit_label(metric.unit)
    series = f" ({plural(len(points), 'series')})" if len(points) > 1 else ""
    if metric.kind == "sum":
        total = sum(p.value or 0 for p in points if p.value is not None)
        return f"sum      {fmt_num(total)}{unit}{series}"
    if metric.kind == "gauge":
        values = [p.value for p in points if p.value is not None]
        if not values:
            return "gauge    -"
        if len(values) == 1:
            return f"gauge    {fmt_num(values[0])}{unit}"
        return f"gauge    {fmt_num(min(values))}..{fmt_num(max(values))}{unit}{series}"
    count = sum(p.count for p in points)
    totals = [p.total for p in points if p.total is not None]
    mean = sum(totals) / count if totals and count else None
    label = "histo" if metric.kind != "summary" else "summary"
    text = f"{label:<8} count {count}"
    if mean is not None:
        text += f", mean {fmt_num(mean)}{unit}"
    return text + series


def render_metrics(report: Report, style: Style, width: int = 0) -> list[str]:
    metrics, stats = report.metrics, report.metric_stats
    title = style.bold("Metrics")
    if not stats.found:
        return [title, "  no metrics recorded (no metrics.jsonl)"]
    if not metrics.metrics:
        return [title, "  no metrics recorded (metrics.jsonl is empty)"]
    found = report.requests
    if found is None:
        lines = [style.bold("Requests"), f"  no {sc.HTTP_SERVER_REQUEST_DURATION_METRIC} recorded"]
    else:
        lines = _render_requests(found, style)
        histograms = render_histograms(found, style, width)
        if histograms:
            lines.append("")
            lines.extend(histograms)
    for section in (render_route_costs(report, style), render_agent(report, style), _render_caches_queues(metrics, style),
                    render_resilience(metrics, style)):
        if section:
            lines.append("")
            lines.extend(section)
    request_metric = found.metric if found else None
    others = sorted(name for name in metrics.metrics if name != request_metric)
    lines.append("")
    lines.append(title + style.dim("  (latest cumulative values, all processes summed)"))
    if not others:
        lines.append("  (no other metrics)")
    rows = []
    for name in others[:_MAX_OTHER_METRICS]:
        metric = metrics.metrics[name]
        rows.append([clean(name, 70), _metric_summary(metric, metrics.merged(name))])
    if rows:
        lines.extend(table(rows, right=set()))
    if len(others) > _MAX_OTHER_METRICS:
        lines.append(f"  … and {len(others) - _MAX_OTHER_METRICS} more")
    return lines


# --------------------------------------------------------------------------- logs


def render_logs(logs: Logs, stats: FileStats, style: Style) -> list[str]:
    title = "Recent logs"
    if not stats.found:
        return [style.bold(title), "  no logs recorded (no logs.jsonl)"]
    if logs.count == 0:
        return [style.bold(title), "  no logs recorded (logs.jsonl is empty)"]
    records = sorted(logs.heap)
    lines = [style.bold(f"{title} (last {len(records)} of {logs.count})")]
    rows = []
    for record in records:
        severity = record.severity
        if record.number >= 17 or severity in ("ERROR", "FATAL", "CRITICAL"):
            severity = style.red(severity)
        elif 13 <= record.number < 17 or severity in ("WARN", "WARNING"):
            severity = style.yellow(severity)
        trace = style.cyan(record.trace_id) if record.trace_id != "-" else record.trace_id
        rows.append([style.dim(fmt_clock(record.time or None)), severity, trace, record.logger, record.body])
    if rows:
        lines.extend(table(rows, right=set()))
    return lines
