"""Aggregating what was read, in bounded memory: recent traces, the latest point per metric
series (processes and deltas summed), the last log records."""

from __future__ import annotations

import heapq
import json
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from agentwatch import semconv as sc
from agentwatch.report._read import (
    LOGS_FILE,
    METRICS_FILE,
    TRACES_FILE,
    FileStats,
    Resources,
    Window,
    any_value,
    as_dict,
    as_float,
    as_int,
    decode_attributes,
    dicts,
    enum_name,
    hex_id,
    read_requests,
    severity_label,
    time_ns,
)
from agentwatch.report._text import clean

_SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}

SPAN_KEYS: tuple[tuple[str, ...], ...] = (
    (sc.HTTP_REQUEST_METHOD,),
    (sc.HTTP_ROUTE,),
    (sc.HTTP_RESPONSE_STATUS_CODE,),
    (sc.URL_FULL, sc.URL_PATH),
    (sc.SERVER_ADDRESS,),
    (sc.DB_SYSTEM_NAME, sc.DB_SYSTEM),
    (sc.DB_QUERY_TEXT, sc.DB_STATEMENT),
    (sc.GEN_AI_OPERATION_NAME,),
    (sc.GEN_AI_REQUEST_MODEL,),
    (sc.GEN_AI_USAGE_INPUT_TOKENS,),
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS,),
    (sc.GEN_AI_REQUEST_TOP_K,),
    (sc.GEN_AI_RETRIEVAL_DOCUMENTS,),
    (sc.GEN_AI_EVALUATION_SCORE_VALUE,),  # copied from the span's gen_ai.evaluation.result (log or span) event
    (sc.ERROR_TYPE,),
)
_WANTED_SPAN_KEYS = frozenset(key for group in SPAN_KEYS for key in group)
_LOG_BODY_WIDTH = 140


# --------------------------------------------------------------------------- traces


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    start: int | None
    end: int | None
    error: bool
    status_message: str
    attributes: dict[str, Any]
    service: str

    @property
    def duration_ms(self) -> float | None:
        if self.start is None or self.end is None or self.end < self.start:
            return None
        return (self.end - self.start) / 1e6


def _shown_attributes(raw: dict[str, Any], events: Any = None) -> dict[str, Any]:
    shown = {k: v for k, v in raw.items() if k in _WANTED_SPAN_KEYS or k.startswith(sc.NAMESPACE)}
    for event in dicts(events):  # a critique's verdict score lives on its evaluation event
        if event.get("name") == sc.EVALUATION_EVENT:
            score = decode_attributes(event.get("attributes")).get(sc.GEN_AI_EVALUATION_SCORE_VALUE)
            if score is not None and sc.GEN_AI_EVALUATION_SCORE_VALUE not in shown:
                shown[sc.GEN_AI_EVALUATION_SCORE_VALUE] = score
    return shown


#: The attribute the web layer puts the request id on (agentwatch.distro.context.REQUEST_ID_KEY).
REQUEST_ID = "agentwatch.request.id"
_MAX_ROUTES = 500  # routes are templates; more than this is high cardinality, summed under "(other)"
_MAX_ERROR_TRACES = 200
_MAX_ERRORS_PER_TRACE = 5


@dataclass
class RouteCost:
    """What the server spans of one route say about the model calls behind them."""

    requests: int = 0
    cost: float = 0.0
    priced: int = 0  # requests whose server span carried agentwatch.request.gen_ai.cost
    calls: int = 0
    tools: int = 0  # execute_tool spans (agentwatch.request.gen_ai.tool_calls), failed ones, agent transfers
    tool_errors: int = 0
    transfers: int = 0

    def tools_cell(self) -> str:
        """``tool calls`` plus ``(N failed, N transfers)`` when there were any: the route table's tools column."""
        notes = [f"{n} {label}" for n, label in ((self.tool_errors, "failed"), (self.transfers, "transfers")) if n]
        return f"{self.tools} ({', '.join(notes)})" if notes else str(self.tools)


@dataclass
class ErrorTrace:
    """A trace with at least one error span: where it failed and the request id to quote."""

    trace_id: str
    time: int | None
    request_id: str = ""
    route: str = ""
    status: str = ""
    ranked: list[tuple[tuple[bool, bool, int], str, str]] = field(default_factory=list)
    count: int = 0

    @property
    def spans(self) -> list[tuple[str, str]]:
        """(span name, message) of its error spans, the likely cause first."""
        return [(name, message) for _rank, name, message in self.ranked]


def server_route(span: Span) -> str:
    return clean(str(span.attributes.get(sc.HTTP_ROUTE) or span.attributes.get(sc.HTTP_TARGET) or "(no route)"), 120)


_MAX_AGENTS = 200  # agent names are configuration, but a file may hold anything: the rest under "(other)"
_MAX_DURATIONS = 4096  # per agent: a uniform sample beyond this (percentiles stay estimates)


@dataclass
class AgentTotals:
    """Every ``invoke_agent`` span of one agent name, over every trace read."""

    invocations: int = 0
    errors: int = 0
    calls: int = 0  # the roll-up's agentwatch.agent.* counts on the agent spans
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    transfers: int = 0  # execute_tool transfer_to_agent spans naming this agent (Google ADK)
    durations: list[float] = field(default_factory=list)  # ms, at most _MAX_DURATIONS (a sample beyond)
    seen: int = 0  # durations offered to the sample


class AgentSpans:
    """Per-agent totals from the ``invoke_agent`` spans (and ADK's transfer tool spans), in bounded memory."""

    _COUNTS = ((sc.AGENT_GENAI_CALLS, "calls"), (sc.AGENT_GENAI_INPUT_TOKENS, "input_tokens"),
               (sc.AGENT_GENAI_OUTPUT_TOKENS, "output_tokens"), (sc.AGENT_TOOL_CALLS, "tool_calls"),
               (sc.AGENT_TOOL_ERRORS, "tool_errors"))

    def __init__(self) -> None:
        self.agents: dict[str, AgentTotals] = {}
        self._random = random.Random(0)  # the sample is reproducible: the same files give the same report

    def _totals(self, name: Any) -> AgentTotals:
        label = clean(str(name), 60) or "-"
        if label not in self.agents and len(self.agents) >= _MAX_AGENTS:
            label = "(other)"
        return self.agents.setdefault(label, AgentTotals())

    def add(self, span: Span, attributes: dict[str, Any]) -> None:
        operation = attributes.get(sc.GEN_AI_OPERATION_NAME)
        if operation == sc.EXECUTE_TOOL and attributes.get(sc.GEN_AI_TOOL_NAME) == sc.TRANSFER_TOOL:
            agent = attributes.get(sc.GEN_AI_AGENT_NAME)
            if agent is not None:
                self._totals(agent).transfers += 1
            return
        if operation != sc.INVOKE_AGENT:
            return
        totals = self._totals(attributes.get(sc.GEN_AI_AGENT_NAME) or span.name.removeprefix(sc.INVOKE_AGENT + " "))
        totals.invocations += 1
        totals.errors += span.error or sc.ERROR_TYPE in attributes
        for key, name in self._COUNTS:
            setattr(totals, name, getattr(totals, name) + max(0, as_int(attributes.get(key)) or 0))
        duration = span.duration_ms
        if duration is not None:
            totals.seen += 1
            if len(totals.durations) < _MAX_DURATIONS:
                totals.durations.append(duration)
            else:  # reservoir sampling: every duration equally likely to be kept
                slot = self._random.randrange(totals.seen)
                if slot < _MAX_DURATIONS:
                    totals.durations[slot] = duration


class Traces:
    def __init__(self, keep: int) -> None:
        self.keep = max(keep * 50, 1000)  # bounded memory; late spans of an evicted trace show as orphans
        self.recent: OrderedDict[str, list[Span]] = OrderedDict()
        self.trace_ids: set[str] = set()
        self.spans = 0
        self.errors = 0
        # Over every trace read, not only the recent ones (bounded by routes / error traces kept):
        self.route_costs: dict[str, RouteCost] = {}
        self.error_traces: OrderedDict[str, ErrorTrace] = OrderedDict()
        self.error_trace_count = 0
        self._request_ids: OrderedDict[str, str] = OrderedDict()
        self.agents = AgentSpans()

    def _note(self, span: Span) -> None:
        attributes = span.attributes
        request_id = attributes.get(REQUEST_ID)
        if request_id is not None:
            self._request_ids[span.trace_id] = clean(str(request_id), 128)
            self._request_ids.move_to_end(span.trace_id)
            while len(self._request_ids) > self.keep:
                self._request_ids.popitem(last=False)
        if span.kind == "SERVER" and not span.parent_id:
            route = server_route(span)
            if route not in self.route_costs and len(self.route_costs) >= _MAX_ROUTES:
                route = "(other)"
            totals = self.route_costs.setdefault(route, RouteCost())
            totals.requests += 1
            cost = as_float(attributes.get(sc.REQUEST_GENAI_COST))
            if cost is not None and cost == cost:  # NaN would poison the sum
                totals.cost += cost
                totals.priced += 1
            totals.calls += max(0, as_int(attributes.get(sc.REQUEST_GENAI_CALLS)) or 0)
            totals.tools += max(0, as_int(attributes.get(sc.REQUEST_GENAI_TOOL_CALLS)) or 0)
            totals.tool_errors += max(0, as_int(attributes.get(sc.REQUEST_GENAI_TOOL_ERRORS)) or 0)
            totals.transfers += max(0, as_int(attributes.get(sc.REQUEST_GENAI_TRANSFERS)) or 0)
        entry = self.error_traces.get(span.trace_id)
        if span.error:
            if entry is None:
                self.error_trace_count += 1
                entry = self.error_traces[span.trace_id] = ErrorTrace(span.trace_id, span.start)
                while len(self.error_traces) > _MAX_ERROR_TRACES:
                    self.error_traces.popitem(last=False)
            entry.count += 1
            if span.start and (entry.time is None or span.start < entry.time):
                entry.time = span.start
            message = span.status_message or clean(str(attributes.get(sc.ERROR_TYPE) or ""), 300)
            # the likely cause first: a span with a status message, below the server span
            rank = (not span.status_message, span.kind == "SERVER", entry.count)
            entry.ranked.append((rank, span.name, message))
            entry.ranked.sort()
            del entry.ranked[_MAX_ERRORS_PER_TRACE:]
        if entry is not None:
            if span.kind == "SERVER" and not entry.route:
                entry.route = server_route(span)
                entry.status = clean(str(attributes.get(sc.HTTP_RESPONSE_STATUS_CODE) or ""), 10)
            if not entry.request_id:
                entry.request_id = self._request_ids.get(span.trace_id, "")

    def add(self, span: Span) -> None:
        self.spans += 1
        self.errors += span.error
        self.trace_ids.add(span.trace_id)
        self._note(span)
        bucket = self.recent.get(span.trace_id)
        if bucket is None:
            bucket = self.recent[span.trace_id] = []
        else:
            self.recent.move_to_end(span.trace_id)
        bucket.append(span)
        while len(self.recent) > self.keep:
            self.recent.popitem(last=False)


def load_traces(directory: str, keep: int, stats: FileStats, resources: Resources, window: Window) -> Traces:
    traces = Traces(keep)
    for request in read_requests(directory, TRACES_FILE, stats):
        for resource_spans in dicts(request.get("resourceSpans")):
            service = resources.add(decode_attributes(as_dict(resource_spans.get("resource")).get("attributes")))
            for scope_spans in dicts(resource_spans.get("scopeSpans")):
                for raw in dicts(scope_spans.get("spans")):
                    status = as_dict(raw.get("status"))
                    code = status.get("code")
                    start, end = time_ns(raw.get("startTimeUnixNano")), time_ns(raw.get("endTimeUnixNano"))
                    window.add(start, end)
                    attributes = decode_attributes(raw.get("attributes"))
                    span = Span(
                        trace_id=hex_id(raw.get("traceId")) or "-",
                        span_id=hex_id(raw.get("spanId")),
                        parent_id=hex_id(raw.get("parentSpanId")),
                        name=clean(str(raw.get("name", "")), 80) or "(unnamed)",
                        kind=enum_name(raw.get("kind"), _SPAN_KINDS, "SPAN_KIND_"),
                        start=start,
                        end=end,
                        error=as_int(code) == 2 or code == "STATUS_CODE_ERROR",
                        status_message=clean(str(status.get("message") or ""), 300),
                        attributes=_shown_attributes(attributes, raw.get("events")),
                        service=service,
                    )
                    traces.add(span)
                    traces.agents.add(span, attributes)
    _evaluation_scores(directory, traces)
    return traces


def _evaluation_scores(directory: str, traces: Traces) -> None:
    """The score of each ``gen_ai.evaluation.result`` log event (logs.jsonl), shown on the recent span it is
    parented to -- as the span event form is. Only lines naming the event are parsed; stats are not counted twice."""
    spans = {(span.trace_id, span.span_id): span for bucket in traces.recent.values() for span in bucket}
    if not spans:
        return
    ignored = FileStats(LOGS_FILE)
    for request in read_requests(directory, LOGS_FILE, ignored, contains=sc.EVALUATION_EVENT.encode()):
        for resource_logs in dicts(request.get("resourceLogs")):
            for scope_logs in dicts(resource_logs.get("scopeLogs")):
                for raw in dicts(scope_logs.get("logRecords")):
                    if raw.get("eventName") != sc.EVALUATION_EVENT:
                        continue
                    span = spans.get((hex_id(raw.get("traceId")) or "-", hex_id(raw.get("spanId"))))
                    if span is None or sc.GEN_AI_EVALUATION_SCORE_VALUE in span.attributes:
                        continue
                    score = decode_attributes(raw.get("attributes")).get(sc.GEN_AI_EVALUATION_SCORE_VALUE)
                    if score is not None:
                        span.attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE] = score


# --------------------------------------------------------------------------- metrics


@dataclass
class Point:
    kind: str  # sum | gauge | histogram | exponentialHistogram | summary
    unit: str
    attributes: dict[str, Any]
    start: int | None
    time: int | None
    value: float | None = None
    count: int = 0
    total: float | None = None
    bounds: list[float] | None = None
    buckets: list[int] | None = None
    low: float | None = None
    high: float | None = None

    def add(self, other: Point) -> None:
        """Sum ``other`` into this point (another process, or a delta)."""
        if self.value is not None or other.value is not None:
            self.value = (self.value or 0) + (other.value or 0)
        self.count += other.count
        if self.total is not None or other.total is not None:
            self.total = (self.total or 0) + (other.total or 0)
        if self.buckets is not None and other.buckets is not None and self.bounds == other.bounds:
            self.buckets = [a + b for a, b in zip(self.buckets, other.buckets)]
        else:
            self.buckets = None  # different bucket layouts cannot be merged
        self.low = other.low if self.low is None else self.low if other.low is None else min(self.low, other.low)
        self.high = other.high if self.high is None else self.high if other.high is None else max(self.high, other.high)
        if other.start and (not self.start or other.start < self.start):
            self.start = other.start
        if other.time and (not self.time or other.time > self.time):
            self.time = other.time

    def copy(self) -> Point:
        return Point(**{**self.__dict__, "attributes": dict(self.attributes),
                         "buckets": list(self.buckets) if self.buckets is not None else None})


def _freeze(attributes: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, json.dumps(value, sort_keys=True, default=str)) for key, value in attributes.items()))


def _parse_point(kind: str, unit: str, raw: dict[str, Any]) -> Point:
    point = Point(
        kind=kind,
        unit=unit,
        attributes=decode_attributes(raw.get("attributes")),
        start=time_ns(raw.get("startTimeUnixNano")),
        time=time_ns(raw.get("timeUnixNano")),
    )
    if kind in ("sum", "gauge"):
        if "asInt" in raw:
            number = as_int(raw["asInt"])
            point.value = float(number) if number is not None else None
        else:
            point.value = as_float(raw.get("asDouble"))
        return point
    point.count = max(0, as_int(raw.get("count")) or 0)
    point.total = as_float(raw.get("sum"))
    point.low = as_float(raw.get("min"))
    point.high = as_float(raw.get("max"))
    if kind == "histogram":
        bounds = [as_float(b) for b in raw.get("explicitBounds") or [] if not isinstance(b, (dict, list))]
        buckets = [as_int(c) for c in raw.get("bucketCounts") or [] if not isinstance(c, (dict, list))]
        if (
            buckets
            and None not in bounds
            and None not in buckets
            and len(buckets) == len(bounds) + 1
        ):
            point.bounds = [float(b) for b in bounds if b is not None]
            point.buckets = [max(0, int(c)) for c in buckets if c is not None]
    return point


@dataclass
class Metric:
    name: str
    kind: str
    unit: str
    # (resource, scope, attributes, start) -> latest cumulative point, or the summed deltas
    series: dict[tuple[Any, ...], Point] = field(default_factory=dict)


class Metrics:
    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}
        self.points = 0

    def add(self, resource_key: Any, scope: str, raw_metric: dict[str, Any]) -> None:
        name = raw_metric.get("name")
        if not isinstance(name, str) or not name:
            return
        for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
            if kind in raw_metric:
                break
        else:
            return
        data = as_dict(raw_metric.get(kind))
        unit = str(raw_metric.get("unit") or "")
        temporality = data.get("aggregationTemporality")
        delta = as_int(temporality) == 1 or temporality == "AGGREGATION_TEMPORALITY_DELTA"
        metric = self.metrics.get(name)
        if metric is None:
            metric = self.metrics[name] = Metric(name, kind, unit)
        for raw in dicts(data.get("dataPoints")):
            self.points += 1
            point = _parse_point(kind, unit, raw)
            # A cumulative series keeps its start time for the life of the process,
            # so (resource, start) tells processes apart even without service.instance.id.
            start_key = None if (delta or kind == "gauge") else point.start
            key = (resource_key, scope, _freeze(point.attributes), start_key, kind)
            current = metric.series.get(key)
            if current is None:
                metric.series[key] = point
            elif delta:
                current.add(point)
            elif (point.time or 0, point.count) >= (current.time or 0, current.count):
                metric.series[key] = point

    def merged(self, name: str) -> list[Point]:
        """One point per attribute set: the series of every process summed."""
        metric = self.metrics.get(name)
        if metric is None:
            return []
        by_attributes: dict[Any, Point] = {}
        for (_resource, _scope, attributes, _start, kind), point in metric.series.items():
            key = (attributes, kind)
            if key in by_attributes:
                by_attributes[key].add(point)
            else:
                by_attributes[key] = point.copy()
        return list(by_attributes.values())


def load_metrics(directory: str, stats: FileStats, resources: Resources, window: Window) -> Metrics:
    metrics = Metrics()
    for request in read_requests(directory, METRICS_FILE, stats):
        for resource_metrics in dicts(request.get("resourceMetrics")):
            attributes = decode_attributes(as_dict(resource_metrics.get("resource")).get("attributes"))
            resources.add(attributes)
            resource_key = _freeze(attributes)
            for scope_metrics in dicts(resource_metrics.get("scopeMetrics")):
                scope = str(as_dict(scope_metrics.get("scope")).get("name") or "")
                for raw_metric in dicts(scope_metrics.get("metrics")):
                    metrics.add(resource_key, scope, raw_metric)
    for metric in metrics.metrics.values():
        for point in metric.series.values():
            window.add(point.start, point.time)
    return metrics


def quantile(bounds: list[float], buckets: list[int], q: float, low: float | None = None,
             high: float | None = None) -> float | None:
    """Estimate the ``q`` quantile of an explicit-bucket histogram.

    Linear interpolation inside the bucket holding the rank, as Prometheus'
    ``histogram_quantile`` does; the recorded min/max (when present) bound the
    open first and last buckets and clamp the result.
    """
    total = sum(buckets)
    if total <= 0 or len(buckets) != len(bounds) + 1:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(buckets):
        if count <= 0:
            continue
        if cumulative + count >= rank:
            if index == 0:
                upper = bounds[0] if bounds else (high if high is not None else 0.0)
                lower = low if low is not None else min(0.0, upper)
            elif index == len(bounds):
                lower = bounds[-1]
                upper = high if high is not None else bounds[-1]
            else:
                lower, upper = bounds[index - 1], bounds[index]
            if low is not None:
                lower = max(lower, low)
            if high is not None:
                upper = min(upper, high)
            if upper < lower:
                upper = lower
            estimate = lower + (upper - lower) * ((rank - cumulative) / count)
            if low is not None:
                estimate = max(estimate, low)
            if high is not None:
                estimate = min(estimate, high)
            return estimate
        cumulative += count
    return high


# --------------------------------------------------------------------------- logs


@dataclass(order=True)
class Log:
    time: int
    sequence: int
    severity: str = field(compare=False)
    number: int = field(compare=False)
    logger: str = field(compare=False)
    body: str = field(compare=False)
    trace_id: str = field(compare=False)


def _body_text(value: Any, event_name: Any = None, attributes: Any = None) -> str:
    body = any_value(value)
    if body is None:
        if isinstance(event_name, str) and event_name:  # an event (e.g. gen_ai.evaluation.result): name and attributes
            shown = " ".join(f"{k}={v}" for k, v in decode_attributes(attributes).items())
            return f"{event_name} {shown}".strip()
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(body, ensure_ascii=False, default=str)


class Logs:
    def __init__(self, keep: int) -> None:
        self.keep = max(0, keep)
        self.heap: list[Log] = []
        self.count = 0
        self.errors = 0


def load_logs(directory: str, keep: int, stats: FileStats, resources: Resources, window: Window) -> Logs:
    logs = Logs(keep)
    for request in read_requests(directory, LOGS_FILE, stats):
        for resource_logs in dicts(request.get("resourceLogs")):
            resources.add(decode_attributes(as_dict(resource_logs.get("resource")).get("attributes")))
            for scope_logs in dicts(resource_logs.get("scopeLogs")):
                logger = str(as_dict(scope_logs.get("scope")).get("name") or "-")
                for raw in dicts(scope_logs.get("logRecords")):
                    logs.count += 1
                    stamp = time_ns(raw.get("timeUnixNano")) or time_ns(raw.get("observedTimeUnixNano")) or 0
                    window.add(stamp or None)
                    number = as_int(raw.get("severityNumber")) or 0
                    if number >= 17:
                        logs.errors += 1
                    if logs.keep == 0:
                        continue
                    record = Log(
                        time=stamp,
                        sequence=logs.count,
                        severity=severity_label(raw.get("severityNumber"), raw.get("severityText")),
                        number=number,
                        logger=clean(logger, 40),
                        body=clean(_body_text(raw.get("body"), raw.get("eventName"), raw.get("attributes")),
                                   _LOG_BODY_WIDTH),
                        trace_id=hex_id(raw.get("traceId"))[:8] or "-",
                    )
                    if len(logs.heap) < logs.keep:
                        heapq.heappush(logs.heap, record)
                    else:
                        heapq.heappushpop(logs.heap, record)
    return logs
