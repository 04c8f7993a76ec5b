"""The report's numbers, computed once from what was read: the terminal report (:mod:`._render`)
and the HTML page (:mod:`._html`) both render this, so the two always agree.

Latencies are in milliseconds (floats, ``None`` when unknown); both renderers format them with the
same :func:`._text.fmt_ms`.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Any

from agentwatch import semconv as sc
from agentwatch.report._agents import AgentStats, ToolStats, agent_stats, tool_stats
from agentwatch.report._aggregate import (
    REQUEST_ID,
    ErrorTrace,
    Logs,
    Metrics,
    Point,
    RouteCost,
    Span,
    Traces,
    load_logs,
    load_metrics,
    load_traces,
    quantile,
    server_route,
)
from agentwatch.report._read import LOGS_FILE, METRICS_FILE, TRACES_FILE, FileStats, Resources, Window, as_int
from agentwatch.report._text import clean, fmt_num

# --------------------------------------------------------------------------- metric helpers


def to_ms(unit: str) -> float:
    """Milliseconds per ``unit`` (a duration histogram's unit; seconds when unknown)."""
    return {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6}.get(unit, 1000.0)


def attr(point: Point, *keys: str) -> Any:
    for key in keys:
        if key in point.attributes:
            return point.attributes[key]
    return None


def combine(points: list[Point]) -> Point | None:
    combined: Point | None = None
    for point in points:
        if combined is None:
            combined = point.copy()
        else:
            combined.add(point)
    return combined


def group_by(points: list[Point], *keys: str) -> dict[str, list[Point]]:
    groups: dict[str, list[Point]] = {}
    for point in points:
        label = attr(point, *keys)
        groups.setdefault("-" if label is None else clean(str(label), 40), []).append(point)
    return groups


def sum_value(points: list[Point]) -> float:
    return sum(p.value or 0 for p in points)


def quantile_ms(point: Point | None, q: float, scale: float | None = None) -> float | None:
    """The ``q`` quantile of a histogram point in ms (``scale``: ms per unit; by default from the point's unit)."""
    if point is None or point.bounds is None or point.buckets is None:
        return None
    estimate = quantile(point.bounds, point.buckets, q, point.low, point.high)
    if estimate is None:
        return None
    return estimate * (to_ms(point.unit or "s") if scale is None else scale)


# --------------------------------------------------------------------------- requests per route


@dataclass
class Histogram:
    """Bucket counts of a latency histogram, from its first to its last non-empty bucket."""

    labels: list[str]  # "≤ 25 ms", ..., "> 10 s"
    counts: list[int]


def _bound(ms: float) -> str:
    return f"{fmt_num(ms / 1000)} s" if ms >= 1000 else f"{fmt_num(ms)} ms"


def latency_histogram(point: Point, scale: float) -> Histogram | None:
    if point.bounds is None or point.buckets is None or not any(point.buckets):
        return None
    filled = [index for index, count in enumerate(point.buckets) if count]
    labels, counts = [], []
    for index in range(filled[0], filled[-1] + 1):
        if index == len(point.bounds):
            labels.append("> " + _bound(point.bounds[-1] * scale))
        else:
            labels.append("≤ " + _bound(point.bounds[index] * scale))
        counts.append(point.buckets[index])
    return Histogram(labels, counts)


@dataclass
class RequestRow:
    route: str
    method: str
    status: str
    count: int


@dataclass
class RouteStats:
    route: str
    count: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None
    histogram: Histogram | None


@dataclass
class Requests:
    """``http.server.request.duration`` (or its pre-1.0 name), every process summed."""

    metric: str
    series: int
    seconds: float  # time the cumulative series cover
    total: int
    errors: int  # 5xx
    rows: list[RequestRow]
    routes: list[RouteStats]

    def rate(self, count: int) -> str:
        # below a second of observation a rate says nothing
        return f"{count / self.seconds:.2f}/s" if self.seconds >= 1.0 else "-"


def requests(metrics: Metrics) -> Requests | None:
    stable = sc.HTTP_SERVER_REQUEST_DURATION_METRIC
    name = stable if stable in metrics.metrics else sc.HTTP_SERVER_DURATION_METRIC  # pre-1.0 HTTP conventions
    points = [p for p in metrics.merged(name) if p.kind == "histogram"]
    if not points:
        return None
    unit = metrics.metrics[name].unit or ("s" if name == stable else "ms")
    scale = to_ms(unit)
    starts = [p.start for p in points if p.start]
    times = [p.time for p in points if p.time]
    seconds = (max(times) - min(starts)) / 1e9 if starts and times and max(times) > min(starts) else 0.0

    by_request: dict[tuple[str, str, str], int] = {}
    routes: dict[str, Point] = {}
    route_errors: dict[str, int] = {}
    total = errors = 0
    for point in points:
        route = clean(str(attr(point, sc.HTTP_ROUTE, sc.HTTP_TARGET) or "(no route)"), 120)
        method = clean(str(attr(point, sc.HTTP_REQUEST_METHOD, sc.HTTP_METHOD) or "-"), 10)
        status = as_int(attr(point, sc.HTTP_RESPONSE_STATUS_CODE, sc.HTTP_STATUS_CODE))
        key = (route, method, str(status) if status is not None else "-")
        by_request[key] = by_request.get(key, 0) + point.count
        total += point.count
        if status is not None and status >= 500:
            errors += point.count
            route_errors[route] = route_errors.get(route, 0) + point.count
        if route in routes:
            routes[route].add(point)
        else:
            routes[route] = point.copy()
    stats = []
    for route, point in sorted(routes.items()):
        mean = point.total / point.count if point.total is not None and point.count else None
        stats.append(RouteStats(
            route=route, count=point.count, errors=route_errors.get(route, 0),
            p50=quantile_ms(point, 0.5, scale), p95=quantile_ms(point, 0.95, scale),
            p99=quantile_ms(point, 0.99, scale), mean=mean * scale if mean is not None else None,
            histogram=latency_histogram(point, scale),
        ))
    rows = [RequestRow(route, method, status, count) for (route, method, status), count in sorted(by_request.items())]
    return Requests(name, len(points), seconds, total, errors, rows, stats)


# --------------------------------------------------------------------------- model calls and cost


@dataclass
class ModelStats:
    model: str
    calls: int
    errors: int
    input_tokens: float
    output_tokens: float
    cost: float | None  # None: no cost metric for this model
    p50: float | None
    p95: float | None


def model_stats(metrics: Metrics) -> list[ModelStats]:
    """``gen_ai.client.operation.duration``, token usage and ``agentwatch.gen_ai.client.cost`` per model."""
    calls = metrics.merged(sc.GEN_AI_CLIENT_OPERATION_DURATION)
    tokens = group_by(metrics.merged(sc.GEN_AI_CLIENT_TOKEN_USAGE), sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL)
    costs = group_by(metrics.merged(sc.GENAI_COST_METRIC), sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL)
    stats = []
    for model, points in sorted(group_by(calls, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL).items()):
        combined = combine(points)
        by_type = group_by(tokens.get(model, []), sc.GEN_AI_TOKEN_TYPE)
        cost = costs.get(model)
        stats.append(ModelStats(
            model=model,
            calls=combined.count if combined else 0,
            errors=sum(p.count for p in points if sc.ERROR_TYPE in p.attributes),
            input_tokens=sum(p.total or 0 for p in by_type.get("input", [])),
            output_tokens=sum(p.total or 0 for p in by_type.get("output", [])),
            cost=sum_value(cost) if cost else None,
            p50=quantile_ms(combined, 0.5), p95=quantile_ms(combined, 0.95),
        ))
    return stats


def fmt_cost(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return fmt_num(value) + ("" if not unit or unit == "1" else " " + clean(unit, 20))


# --------------------------------------------------------------------------- recent requests


#: Span roles the waterfalls tell apart (fixed names: the HTML uses them as CSS classes).
ROLES = ("server", "intent", "rag", "planner", "critic", "model", "db", "http", "other")
_MODEL_OPERATIONS = {"generate_content", "chat", "text_completion", "embeddings", "stream_generate_content",
                     "count_tokens", "embed_content"}


def role(span: Span) -> str:
    attributes = span.attributes
    operation = attributes.get(sc.GEN_AI_OPERATION_NAME)
    if any(key.startswith("agentwatch.intent.") for key in attributes) or span.name.startswith("classify_intent"):
        return "intent"
    if operation == "retrieval":
        return "rag"
    if operation == "plan":
        return "planner"
    if operation == "critique":
        return "critic"
    if operation in _MODEL_OPERATIONS or sc.GEN_AI_REQUEST_MODEL in attributes:
        return "model"
    if sc.DB_SYSTEM_NAME in attributes or sc.DB_SYSTEM in attributes:
        return "db"
    if span.kind == "SERVER":
        return "server"
    if span.kind == "CLIENT" and sc.HTTP_REQUEST_METHOD in attributes:
        return "http"
    return "other"


_MAX_DRAWN_DEPTH = 24
#: Spans shown per request; the rest are counted (``Request.hidden``).
MAX_ROWS = 300


@dataclass
class SpanRow:
    span: Span
    depth: int
    prefix: str  # the tree drawing before the name: "├─ ", "│  └─ "...
    orphan: bool  # its parent was not recorded
    offset: float  # start, as a fraction of the trace's duration
    length: float  # duration, as a fraction of the trace's duration
    role: str


@dataclass
class Request:
    """One recent trace: its root request and its spans in tree order."""

    trace_id: str
    start: int | None
    total_ms: float | None
    services: list[str]
    rows: list[SpanRow]
    errors: int
    hidden: int = 0  # spans beyond MAX_ROWS, not in rows
    request_id: str = ""
    method: str = ""
    route: str = ""
    status: str = ""
    cost: float | None = None


def _tree(spans: list[Span]) -> list[tuple[Span, int, str, bool]]:
    """``spans`` in tree order: (span, depth, tree prefix, orphan)."""
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

    rows: list[tuple[Span, int, str, bool]] = []
    seen: set[int] = set()
    # iterative depth-first walk: a corrupt file can nest deeper than Python's recursion limit
    stack: list[tuple[Span, int, str, str, bool]] = []
    for root in reversed(sorted(roots, key=order)):
        stack.append((root, 0, "", "", bool(root.parent_id)))
    while True:
        while stack:
            span, depth, prefix, branch, orphan = stack.pop()
            if id(span) in seen:
                continue
            seen.add(id(span))
            rows.append((span, depth, prefix + branch, orphan))
            kids = sorted(children.get(span.span_id, []), key=order)
            # past _MAX_DRAWN_DEPTH the drawing stops growing: a corrupt file's parent chain can be
            # thousands deep, and each line repeating it would make the output quadratic
            child_prefix = prefix if depth >= _MAX_DRAWN_DEPTH else (
                prefix + ("   " if branch == "└─ " else "│  " if branch else ""))
            for number in reversed(range(len(kids))):
                stack.append((kids[number], depth + 1, child_prefix, "└─ " if number == len(kids) - 1 else "├─ ", False))
        # spans caught in a parent cycle (corrupt input) are still shown
        rest = [span for span in sorted(spans, key=order) if id(span) not in seen]
        if not rest:
            return rows
        stack.append((rest[0], 0, "", "", True))


def _request(trace_id: str, spans: list[Span]) -> Request:
    starts = [s.start for s in spans if s.start]
    ends = [s.end for s in spans if s.end]
    first = min(starts) if starts else None
    total_ns = max(ends) - first if first is not None and ends and max(ends) >= first else None
    rows = []
    tree = _tree(spans)
    for span, depth, prefix, orphan in tree[:MAX_ROWS]:
        offset = length = 0.0
        if total_ns and first is not None and span.start:
            offset = (span.start - first) / total_ns
            length = ((span.end or span.start) - span.start) / total_ns
        rows.append(SpanRow(span, depth, prefix, orphan, offset, max(0.0, length), role(span)))
    request = Request(
        trace_id=trace_id, start=first, total_ms=total_ns / 1e6 if total_ns is not None else None,
        services=list(dict.fromkeys(span.service for span in spans)), rows=rows,
        errors=sum(span.error for span in spans), hidden=max(0, len(tree) - MAX_ROWS),
    )
    root = next((row.span for row in rows if row.span.kind == "SERVER"), rows[0].span if rows else None)
    for span in spans:
        if REQUEST_ID in span.attributes and not request.request_id:
            request.request_id = clean(str(span.attributes[REQUEST_ID]), 128)
    if root is not None:
        attributes = root.attributes
        request.method = clean(str(attributes.get(sc.HTTP_REQUEST_METHOD) or ""), 10)
        request.route = server_route(root) if root.kind == "SERVER" else root.name
        status = attributes.get(sc.HTTP_RESPONSE_STATUS_CODE)
        request.status = clean(str(status), 10) if status is not None else ""
        cost = attributes.get(sc.REQUEST_GENAI_COST)
        request.cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
    return request


def recent_requests(traces: Traces, count: int) -> list[Request]:
    """The ``count`` traces that ended last, oldest first."""
    if count <= 0:
        return []

    def last_end(item: tuple[str, list[Span]]) -> int:
        return max((span.end or span.start or 0) for span in item[1])

    chosen = heapq.nlargest(count, traces.recent.items(), key=last_end)
    chosen.sort(key=last_end)
    return [_request(trace_id, spans) for trace_id, spans in chosen]


# --------------------------------------------------------------------------- the whole report


@dataclass
class Report:
    directory: str
    resources: Resources
    window: Window
    trace_stats: FileStats
    metric_stats: FileStats
    log_stats: FileStats
    traces: Traces
    metrics: Metrics
    logs: Logs
    requests: Requests | None
    models: list[ModelStats]
    cost_unit: str
    route_costs: list[tuple[str, RouteCost]]
    recent: list[Request]
    errors: list[ErrorTrace] = field(default_factory=list)  # newest last
    agents: list[AgentStats] = field(default_factory=list)  # the Agents section (invoke_agent spans)
    tools: list[ToolStats] = field(default_factory=list)  # the Tools section (tool metrics)

    @property
    def found(self) -> bool:
        return self.trace_stats.found or self.metric_stats.found or self.log_stats.found


def build(directory: str, *, traces: int = 5, logs: int = 15) -> Report:
    """Read and aggregate the telemetry files in ``directory`` (which must exist)."""
    resources, window = Resources(), Window()
    trace_stats, metric_stats, log_stats = FileStats(TRACES_FILE), FileStats(METRICS_FILE), FileStats(LOGS_FILE)
    trace_data = load_traces(directory, traces, trace_stats, resources, window)
    metric_data = load_metrics(directory, metric_stats, resources, window)
    log_data = load_logs(directory, logs, log_stats, resources, window)
    cost_metric = metric_data.metrics.get(sc.GENAI_COST_METRIC)
    return Report(
        directory=os.path.abspath(directory), resources=resources, window=window,
        trace_stats=trace_stats, metric_stats=metric_stats, log_stats=log_stats,
        traces=trace_data, metrics=metric_data, logs=log_data,
        requests=requests(metric_data), models=model_stats(metric_data),
        cost_unit=cost_metric.unit if cost_metric else "",
        route_costs=sorted(trace_data.route_costs.items()),
        recent=recent_requests(trace_data, traces),
        errors=sorted(trace_data.error_traces.values(), key=lambda e: e.time or 0),
        agents=agent_stats(trace_data.agents.agents), tools=tool_stats(metric_data),
    )
