"""Rendering the aggregated telemetry: the recent requests as span trees, the request and agent
pipeline tables, the latest value of every other metric, the recent logs."""

from __future__ import annotations

import heapq
import json
from typing import Any

from agentwatch import semconv as sc
from agentwatch.report._aggregate import SPAN_KEYS, Logs, Metric, Metrics, Point, Span, Traces, quantile
from agentwatch.report._read import FileStats, as_float, as_int
from agentwatch.report._resilience import render_resilience
from agentwatch.report._text import (
    VALUE_WIDTH,
    Style,
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


def _trace_tree(spans: list[Span], style: Style, indent: str) -> list[str]:
    by_id = {span.span_id: span for span in spans if span.span_id}
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for span in spans:
        if span.parent_id and span.parent_id in by_id and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)

    def order(span: Span) -> int:
        return span.start or 0

    lines: list[str] = []
    seen: set[int] = set()

    def walk(span: Span, prefix: str, branch: str, orphan: bool) -> None:
        if id(span) in seen:
            return
        seen.add(id(span))
        note = style.dim("  (parent span not recorded)") if orphan else ""
        lines.append(indent + prefix + branch + _span_line(span, style) + note)
        kids = sorted(children.get(span.span_id, []), key=order)
        child_prefix = prefix + ("   " if branch == "└─ " else "│  " if branch else "")
        for number, child in enumerate(kids):
            walk(child, child_prefix, "└─ " if number == len(kids) - 1 else "├─ ", False)

    for root in sorted(roots, key=order):
        walk(root, "", "", bool(root.parent_id))
    # spans caught in a parent cycle (corrupt input) are still shown
    for span in sorted(spans, key=order):
        if id(span) not in seen:
            walk(span, "", "", True)
    return lines


def render_traces(traces: Traces, count: int, stats: FileStats, style: Style) -> list[str]:
    title = "Recent requests"
    if not stats.found:
        return [style.bold(title), "  no traces recorded (no traces.jsonl)"]
    if traces.spans == 0:
        return [style.bold(title), "  no traces recorded (traces.jsonl is empty)"]
    if count <= 0:
        return [style.bold(title), f"  {plural(len(traces.trace_ids), 'trace')} recorded (none requested)"]

    def last_end(item: tuple[str, list[Span]]) -> int:
        return max((span.end or span.start or 0) for span in item[1])

    chosen = heapq.nlargest(count, traces.recent.items(), key=last_end)
    chosen.sort(key=last_end)
    lines = [style.bold(f"{title} (last {len(chosen)} of {len(traces.trace_ids)} traces, oldest first)")]
    for trace_id, spans in chosen:
        starts = [s.start for s in spans if s.start]
        ends = [s.end for s in spans if s.end]
        first = min(starts) if starts else None
        total_ms = (max(ends) - first) / 1e6 if starts and ends and max(ends) >= first else None  # pyright: ignore[reportOperatorIssue] - first is set when starts is
        services = list(dict.fromkeys(span.service for span in spans))
        errors = sum(span.error for span in spans)
        header = [
            "trace " + style.cyan(trace_id),
            fmt_clock(first),
            clean(", ".join(services), 60),
            style.dim(fmt_ms(total_ms)),
            plural(len(spans), "span"),
        ]
        if errors:
            header.append(style.red(f"{errors} error" + ("" if errors == 1 else "s")))
        lines.append("")
        lines.append("  " + "  ".join(header))
        lines.extend(_trace_tree(spans, style, "    "))
    return lines


# --------------------------------------------------------------------------- metrics


def _to_ms(unit: str) -> float:
    return {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6}.get(unit, 1000.0)


def _attr(point: Point, *keys: str) -> Any:
    for key in keys:
        if key in point.attributes:
            return point.attributes[key]
    return None


def _render_requests(metrics: Metrics, style: Style) -> tuple[list[str], str | None]:
    stable = sc.HTTP_SERVER_REQUEST_DURATION_METRIC
    name = stable if stable in metrics.metrics else sc.HTTP_SERVER_DURATION_METRIC  # pre-1.0 HTTP conventions
    points = [p for p in metrics.merged(name) if p.kind == "histogram"]
    if not points:
        return [], None
    unit = metrics.metrics[name].unit or ("s" if name == stable else "ms")
    scale = _to_ms(unit)
    starts = [p.start for p in points if p.start]
    times = [p.time for p in points if p.time]
    seconds = (max(times) - min(starts)) / 1e9 if starts and times and max(times) > min(starts) else 0.0

    def rate(count: int) -> str:
        # below a second of observation a rate says nothing
        return f"{count / seconds:.2f}/s" if seconds >= 1.0 else "-"

    by_request: dict[tuple[str, str, str], int] = {}
    routes: dict[str, Point] = {}
    route_errors: dict[str, int] = {}
    total = errors = 0
    for point in points:
        route = str(_attr(point, sc.HTTP_ROUTE, sc.HTTP_TARGET) or "(no route)")
        method = str(_attr(point, sc.HTTP_REQUEST_METHOD, sc.HTTP_METHOD) or "-")
        status_raw = _attr(point, sc.HTTP_RESPONSE_STATUS_CODE, sc.HTTP_STATUS_CODE)
        status = as_int(status_raw)
        status_text = str(status) if status is not None else "-"
        is_error = status is not None and status >= 500
        key = (route, method, status_text)
        by_request[key] = by_request.get(key, 0) + point.count
        total += point.count
        if is_error:
            errors += point.count
            route_errors[route] = route_errors.get(route, 0) + point.count
        if route in routes:
            routes[route].add(point)
        else:
            routes[route] = point.copy()

    lines = [
        style.bold("Requests")
        + style.dim(f"  ({name}, {plural(len(points), 'series')} over {fmt_duration(seconds)})"),
    ]
    error_rate = errors / total if total else 0.0
    summary = f"  {plural(total, 'request')}, {rate(total)}, {plural(errors, 'error')} (5xx)"
    summary += ", error rate " + (style.red(f"{error_rate:.1%}") if errors else f"{error_rate:.1%}")
    lines.append(summary)
    lines.append("")
    rows = [["route", "method", "status", "count", "rate"]]
    for (route, method, status_text), count in sorted(by_request.items()):
        status_cell = status_text
        if status_text.isdigit() and int(status_text) >= 500:
            status_cell = style.red(status_text)
        rows.append([clean(route, 60), clean(method, 10), status_cell, str(count), rate(count)])
    lines.extend(table(rows, right={3, 4}))
    lines.append("")
    rows = [["route", "count", "errors", "error %", "p50", "p95", "p99", "mean"]]
    for route, point in sorted(routes.items()):
        route_error = route_errors.get(route, 0)
        cells = [clean(route, 60), str(point.count),
                 style.red(str(route_error)) if route_error else "0",
                 f"{route_error / point.count:.1%}" if point.count else "-"]
        cells.extend(_histogram_ms(point, q, scale) for q in (0.5, 0.95, 0.99))
        mean = point.total / point.count if point.total is not None and point.count else None
        cells.append(fmt_ms(mean * scale) if mean is not None else "-")
        rows.append(cells)
    lines.extend(table(rows, right={1, 2, 3, 4, 5, 6, 7}))
    lines.append(style.dim("  latency percentiles are estimated from histogram buckets (linear interpolation)"))
    return lines, name


# ----------------------------------------------------------------- agent pipeline

_AGENT_METRICS = (
    sc.INTENT_CLASSIFICATIONS_METRIC, sc.RETRIEVAL_DURATION_METRIC, sc.PLAN_DURATION_METRIC,
    sc.CRITIQUE_VERDICTS_METRIC, sc.GEN_AI_CLIENT_OPERATION_DURATION,
)


def _combine(points: list[Point]) -> Point | None:
    combined: Point | None = None
    for point in points:
        if combined is None:
            combined = point.copy()
        else:
            combined.add(point)
    return combined


def _by(points: list[Point], *keys: str) -> dict[str, list[Point]]:
    groups: dict[str, list[Point]] = {}
    for point in points:
        label = _attr(point, *keys)
        groups.setdefault("-" if label is None else clean(str(label), 40), []).append(point)
    return groups


def _histogram_ms(point: Point | None, q: float, scale: float | None = None) -> str:
    """The ``q`` quantile of a histogram point in ms (``scale``: ms per unit; by default from the point's unit, s)."""
    if point is None or point.bounds is None or point.buckets is None:
        return "-"
    estimate = quantile(point.bounds, point.buckets, q, point.low, point.high)
    if estimate is None:
        return "-"
    return fmt_ms(estimate * (_to_ms(point.unit or "s") if scale is None else scale))


def _timed_cells(points: list[Point]) -> tuple[str, str, str, str]:
    """Count, errors (points with ``error.type``), p50 and p95 of a group of duration points, as table cells."""
    combined = _combine(points)
    errors = sum(p.count for p in points if sc.ERROR_TYPE in p.attributes)
    return (str(combined.count if combined else 0), str(errors),
            _histogram_ms(combined, 0.5), _histogram_ms(combined, 0.95))


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


def _sum_value(points: list[Point]) -> float:
    return sum(p.value or 0 for p in points)


def _render_agent(metrics: Metrics, style: Style) -> list[str]:
    """Intents, retrieval, plans and critiques, model calls: the ``/chat`` pipeline in numbers."""
    if not any(name in metrics.metrics for name in _AGENT_METRICS):
        return []
    lines = [style.bold("Agent pipeline") + style.dim("  (agentwatch.* and gen_ai.* metrics)")]

    classifications = metrics.merged(sc.INTENT_CLASSIFICATIONS_METRIC)
    if classifications:
        confidence = _by(metrics.merged(sc.INTENT_CONFIDENCE_METRIC), sc.INTENT_NAME)
        low_points = metrics.merged(sc.INTENT_LOW_CONFIDENCE_METRIC)
        low = _by(low_points, sc.INTENT_NAME)
        by_intent = _by(classifications, sc.INTENT_NAME)
        total = _sum_value(classifications)
        classifiers = sorted(_by(classifications, sc.INTENT_CLASSIFIER))
        lines.append(f"  intents ({clean(', '.join(classifiers), 60)}): {fmt_num(total)} classified, "
                     f"{fmt_num(_sum_value(low_points))} below the confidence threshold")
        rows = [["intent", "count", "share", "mean confidence", "low confidence"]]
        for intent, points in sorted(by_intent.items(), key=lambda item: (-_sum_value(item[1]), item[0])):
            count = _sum_value(points)
            mean = _mean(_combine(confidence.get(intent, [])))
            rows.append([intent, fmt_num(count), f"{count / total:.0%}" if total else "-",
                         f"{mean:.2f}" if mean is not None else "-", fmt_num(_sum_value(low.get(intent, [])))])
        lines.extend(table(rows, right={1, 2, 3, 4}, indent="    "))

    durations = metrics.merged(sc.RETRIEVAL_DURATION_METRIC)
    if durations:
        documents = _by(metrics.merged(sc.RETRIEVAL_DOCUMENTS_METRIC), sc.GEN_AI_DATA_SOURCE_ID)
        empty = _by(metrics.merged(sc.RETRIEVAL_EMPTY_METRIC), sc.GEN_AI_DATA_SOURCE_ID)
        top = _by(metrics.merged(sc.RETRIEVAL_TOP_SCORE_METRIC), sc.GEN_AI_DATA_SOURCE_ID)
        rows = [["data source", "retrievals", "errors", "docs/retrieval", "empty", "mean top score", "p50", "p95"]]
        for source, points in sorted(_by(durations, sc.GEN_AI_DATA_SOURCE_ID).items()):
            count, errors, p50, p95 = _timed_cells(points)
            docs_mean = _mean(_combine(documents.get(source, [])))
            top_mean = _mean(_combine(top.get(source, [])))
            rows.append([source, count, errors,
                         fmt_num(docs_mean) if docs_mean is not None else "-",
                         fmt_num(_sum_value(empty.get(source, []))),
                         f"{top_mean:.3f}" if top_mean is not None else "-",
                         p50, p95])
        lines.append("  retrieval")
        lines.extend(table(rows, right={1, 2, 3, 4, 5, 6, 7}, indent="    "))

    plans = metrics.merged(sc.PLAN_DURATION_METRIC)
    if plans:
        iterations = _by(metrics.merged(sc.PLAN_ITERATIONS_METRIC), sc.GEN_AI_AGENT_NAME)
        first = _by(metrics.merged(sc.PLAN_FIRST_TRY_ACCEPTANCE_METRIC), sc.GEN_AI_AGENT_NAME)
        rows = [["agent", "plans", "errors", "iterations: plans", "mean", "accepted first try", "p50", "p95"]]
        for agent, points in sorted(_by(plans, sc.GEN_AI_AGENT_NAME).items()):
            count, errors, p50, p95 = _timed_cells(points)
            agent_iterations = _combine(iterations.get(agent, []))
            mean = _mean(agent_iterations)
            firsts = first.get(agent, [])
            accepted = sum(p.value or 0 for p in firsts if _attr(p, sc.PLAN_ACCEPTED) in (True, "true", "True"))
            judged = _sum_value(firsts)
            rows.append([agent, count, errors, _distribution(agent_iterations),
                         f"{mean:.2f}" if mean is not None else "-",
                         f"{fmt_num(accepted)}/{fmt_num(judged)} ({accepted / judged:.0%})" if judged else "-",
                         p50, p95])
        lines.append("  plans")
        lines.extend(table(rows, right={1, 2, 4, 5, 6, 7}, indent="    "))

    verdicts = metrics.merged(sc.CRITIQUE_VERDICTS_METRIC)
    if verdicts:
        rows = [["critic", "critiques", "accepted", "rejected"]]
        for critic, points in sorted(_by(verdicts, sc.GEN_AI_EVALUATION_NAME).items()):
            by_verdict = _by(points, sc.CRITIQUE_VERDICT)
            rows.append([critic, fmt_num(_sum_value(points)), fmt_num(_sum_value(by_verdict.get("accepted", []))),
                         fmt_num(_sum_value(by_verdict.get("rejected", [])))])
        lines.append("  critique verdicts")
        lines.extend(table(rows, right={1, 2, 3}, indent="    "))

    calls = metrics.merged(sc.GEN_AI_CLIENT_OPERATION_DURATION)
    if calls:
        tokens = _by(metrics.merged(sc.GEN_AI_CLIENT_TOKEN_USAGE), sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL)
        costs = _by(metrics.merged(sc.GENAI_COST_METRIC), sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL)
        rows = [["model", "calls", "errors", "input tokens", "output tokens", "cost", "p50", "p95"]]
        for model, points in sorted(_by(calls, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL).items()):
            count, errors, p50, p95 = _timed_cells(points)
            by_type = _by(tokens.get(model, []), sc.GEN_AI_TOKEN_TYPE)
            used = {kind: sum(p.total or 0 for p in by_type.get(kind, [])) for kind in ("input", "output")}
            cost = costs.get(model)
            unit = metrics.metrics[sc.GENAI_COST_METRIC].unit if cost else ""
            rows.append([model, count, errors,
                         fmt_num(used["input"]), fmt_num(used["output"]),
                         f"{fmt_num(_sum_value(cost))}{unit_label(unit)}" if cost else "-",
                         p50, p95])
        lines.append("  model calls")
        lines.extend(table(rows, right={1, 2, 3, 4, 5, 6, 7}, indent="    "))
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


def render_metrics(metrics: Metrics, stats: FileStats, style: Style) -> list[str]:
    title = style.bold("Metrics")
    if not stats.found:
        return [title, "  no metrics recorded (no metrics.jsonl)"]
    if not metrics.metrics:
        return [title, "  no metrics recorded (metrics.jsonl is empty)"]
    lines, request_metric = _render_requests(metrics, style)
    if not lines:
        lines = [style.bold("Requests"), f"  no {sc.HTTP_SERVER_REQUEST_DURATION_METRIC} recorded"]
    agent = _render_agent(metrics, style)
    if agent:
        lines.append("")
        lines.extend(agent)
    resilience = render_resilience(metrics, style)
    if resilience:
        lines.append("")
        lines.extend(resilience)
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
