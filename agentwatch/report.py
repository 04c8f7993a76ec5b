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
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

__all__ = ["render"]

TRACES_FILE = "traces.jsonl"
METRICS_FILE = "metrics.jsonl"
LOGS_FILE = "logs.jsonl"
REQUEST_DURATION = "http.server.request.duration"
_OLD_REQUEST_DURATION = "http.server.duration"  # pre-1.0 HTTP semconv, unit ms

_SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_SEVERITIES = ((21, "FATAL"), (17, "ERROR"), (13, "WARN"), (9, "INFO"), (5, "DEBUG"), (1, "TRACE"))

# Span attributes shown in the tree, in this order; (alternatives) -> first present wins.
_SPAN_KEYS: tuple[tuple[str, ...], ...] = (
    ("http.request.method",),
    ("http.route",),
    ("http.response.status_code",),
    ("url.full", "url.path"),
    ("server.address",),
    ("db.system.name", "db.system"),
    ("db.query.text", "db.statement"),
    ("gen_ai.operation.name",),
    ("gen_ai.request.model",),
    ("gen_ai.usage.input_tokens",),
    ("gen_ai.usage.output_tokens",),
    ("gen_ai.request.top_k",),
    ("gen_ai.retrieval.documents",),
    ("gen_ai.evaluation.score.value",),  # copied from the span's gen_ai.evaluation.result event
    ("error.type",),
)
_WANTED_SPAN_KEYS = frozenset(key for group in _SPAN_KEYS for key in group)
_TRUNCATE_KEYS = {"db.query.text": 60, "db.statement": 60}
_EVALUATION_EVENT = "gen_ai.evaluation.result"
_EVALUATION_SCORE = "gen_ai.evaluation.score.value"
_RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"
_VALUE_WIDTH = 80
_LOG_BODY_WIDTH = 140
_MAX_OTHER_METRICS = 40

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# --------------------------------------------------------------------------- helpers


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)


def _clean(text: str, width: int | None = None) -> str:
    """One display line: control characters escaped (no terminal injection), truncated."""
    text = text.replace("\r\n", "\n")
    text = _CONTROL.sub(lambda m: {"\n": "\\n", "\t": " "}.get(m.group(), f"\\x{ord(m.group()):02x}"), text)
    if width is not None and len(text) > width:
        text = text[: max(1, width - 1)] + "…"
    return text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
            return int(number) if math.isfinite(number) else None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # also "NaN" / "Infinity" as ProtoJSON writes them
        except ValueError:
            return None
    return None


def _time_ns(value: Any) -> int | None:
    number = _int(value)
    return number if number and number > 0 else None


def _any_value(value: Any) -> Any:
    """An OTLP/JSON AnyValue as a Python value."""
    value = _dict(value)
    if "stringValue" in value:
        return str(value["stringValue"])
    if "intValue" in value:
        number = _int(value["intValue"])
        return number if number is not None else value["intValue"]
    if "doubleValue" in value:
        number = _float(value["doubleValue"])
        return number if number is not None else value["doubleValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_any_value(item) for item in _dicts(_dict(value["arrayValue"]).get("values"))]
    if "kvlistValue" in value:
        return _attributes(_dict(value["kvlistValue"]).get("values"))
    if "bytesValue" in value:
        return f"<{len(str(value['bytesValue'])) * 3 // 4} bytes>"
    return None


def _attributes(value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in _dicts(value):
        key = item.get("key")
        if isinstance(key, str):
            result[key] = _any_value(item.get("value"))
    return result


def _hex_id(value: Any) -> str:
    """Lowercase hex id; tolerates base64 ids (plain protobuf JSON)."""
    if not isinstance(value, str) or not value:
        return ""
    if _HEX.match(value) and len(value) in (16, 32):
        return value.lower()
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return _clean(value, 32)


def _enum(value: Any, names: dict[int, str], prefix: str) -> str:
    number = _int(value)
    if number is not None:
        return names.get(number, str(number))
    if isinstance(value, str):
        return value[len(prefix) :] if value.startswith(prefix) else value
    return names.get(0, "")


def _severity(number: Any, text: Any) -> str:
    if isinstance(text, str) and text.strip():
        return _clean(text.strip().upper(), 8)
    value = _int(number)
    if value is None and isinstance(number, str):
        return _clean(number.replace("SEVERITY_NUMBER_", ""), 8)
    for low, name in _SEVERITIES:
        if value is not None and value >= low:
            return name
    return "-"


def _fmt_value(value: Any, width: int = _VALUE_WIDTH) -> str:
    if isinstance(value, str):
        text = _clean(value, width)
        return json.dumps(text, ensure_ascii=False) if (not text or " " in text or '"' in text) else text
    if isinstance(value, float):
        return _fmt_num(value)
    if isinstance(value, (list, dict)):
        return _clean(json.dumps(value, ensure_ascii=False, default=str), width)
    return _clean(str(value), width)


def _fmt_num(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def _fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def _local(ns: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(ns / 1e9)
    except (OverflowError, OSError, ValueError):
        return None


def _fmt_clock(ns: int | None) -> str:
    moment = _local(ns) if ns else None
    return moment.strftime("%H:%M:%S.%f")[:-3] if moment else "--:--:--.---"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 or word.endswith("s") else "s")


def _unit_label(unit: str) -> str:
    if not unit or unit == "1":
        return ""
    return " " + _clean(unit, 20)


# --------------------------------------------------------------------------- reading


@dataclass
class _FileStats:
    name: str
    found: bool = False
    lines: int = 0
    unreadable: int = 0


def _read_requests(directory: str, filename: str, stats: _FileStats) -> Iterator[dict[str, Any]]:
    """Yield each export request (one JSON object per line), ``.1`` rotation first."""
    for path in (os.path.join(directory, filename + ".1"), os.path.join(directory, filename)):
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            continue
        except OSError:
            stats.found = True
            stats.unreadable += 1
            continue
        stats.found = True
        with handle:
            try:
                for raw in handle:
                    if not raw.strip():
                        continue
                    stats.lines += 1
                    try:
                        request = json.loads(raw)
                    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                        stats.unreadable += 1
                        continue
                    if not isinstance(request, dict):
                        stats.unreadable += 1
                        continue
                    yield request
            except OSError:
                stats.unreadable += 1


class _Window:
    def __init__(self) -> None:
        self.first: int | None = None
        self.last: int | None = None

    def add(self, *stamps: int | None) -> None:
        for ns in stamps:
            if ns:
                self.first = ns if self.first is None else min(self.first, ns)
                self.last = ns if self.last is None else max(self.last, ns)


@dataclass
class _Service:
    name: str
    version: str
    distro: str


class _Resources:
    """Services and instances seen in any resource."""

    def __init__(self) -> None:
        self.services: dict[tuple[str, str, str], None] = {}
        self.instances: set[str] = set()

    def add(self, attributes: dict[str, Any]) -> str:
        name = str(attributes.get("service.name", "unknown_service"))
        version = str(attributes.get("service.version", "-"))
        distro = str(attributes.get("telemetry.distro.name", "-"))
        self.services.setdefault((name, version, distro), None)
        instance = attributes.get("service.instance.id")
        if instance is not None:
            self.instances.add(str(instance))
        return name


# --------------------------------------------------------------------------- traces


@dataclass
class _Span:
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
    shown = {k: v for k, v in raw.items() if k in _WANTED_SPAN_KEYS or k.startswith("agentwatch.")}
    for event in _dicts(events):  # a critique's verdict score lives on its evaluation event
        if event.get("name") == _EVALUATION_EVENT:
            score = _attributes(event.get("attributes")).get(_EVALUATION_SCORE)
            if score is not None and _EVALUATION_SCORE not in shown:
                shown[_EVALUATION_SCORE] = score
    return shown


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
        text = _clean(str(document.get("id", "?")), 40)
        score = _float(document.get("score"))
        if score is not None:
            text += f" {_fmt_num(score)}"
        items.append(text)
    return "[" + ", ".join(items) + "]"


class _Traces:
    def __init__(self, keep: int) -> None:
        self.keep = max(keep * 50, 1000)  # bounded memory; late spans of an evicted trace show as orphans
        self.recent: OrderedDict[str, list[_Span]] = OrderedDict()
        self.trace_ids: set[str] = set()
        self.spans = 0
        self.errors = 0

    def add(self, span: _Span) -> None:
        self.spans += 1
        self.errors += span.error
        self.trace_ids.add(span.trace_id)
        bucket = self.recent.get(span.trace_id)
        if bucket is None:
            bucket = self.recent[span.trace_id] = []
        else:
            self.recent.move_to_end(span.trace_id)
        bucket.append(span)
        while len(self.recent) > self.keep:
            self.recent.popitem(last=False)


def _load_traces(directory: str, keep: int, stats: _FileStats, resources: _Resources, window: _Window) -> _Traces:
    traces = _Traces(keep)
    for request in _read_requests(directory, TRACES_FILE, stats):
        for resource_spans in _dicts(request.get("resourceSpans")):
            service = resources.add(_attributes(_dict(resource_spans.get("resource")).get("attributes")))
            for scope_spans in _dicts(resource_spans.get("scopeSpans")):
                for raw in _dicts(scope_spans.get("spans")):
                    status = _dict(raw.get("status"))
                    code = status.get("code")
                    start, end = _time_ns(raw.get("startTimeUnixNano")), _time_ns(raw.get("endTimeUnixNano"))
                    window.add(start, end)
                    traces.add(
                        _Span(
                            trace_id=_hex_id(raw.get("traceId")) or "-",
                            span_id=_hex_id(raw.get("spanId")),
                            parent_id=_hex_id(raw.get("parentSpanId")),
                            name=_clean(str(raw.get("name", "")), 80) or "(unnamed)",
                            kind=_enum(raw.get("kind"), _SPAN_KINDS, "SPAN_KIND_"),
                            start=start,
                            end=end,
                            error=_int(code) == 2 or code == "STATUS_CODE_ERROR",
                            status_message=_clean(str(status.get("message") or ""), 80),
                            attributes=_shown_attributes(_attributes(raw.get("attributes")), raw.get("events")),
                            service=service,
                        )
                    )
    return traces


def _span_line(span: _Span, style: _Style) -> str:
    parts = [style.bold(span.name), style.dim(span.kind), style.dim(_fmt_ms(span.duration_ms))]
    if span.error:
        parts.append(style.red("ERROR" + (f" {span.status_message}" if span.status_message else "")))
    attributes = span.attributes
    for group in _SPAN_KEYS:
        for key in group:
            if key in attributes:
                value = _fmt_value(attributes[key], _TRUNCATE_KEYS.get(key, _VALUE_WIDTH))
                if key == _RETRIEVAL_DOCUMENTS:
                    value = _clean(_documents_text(attributes[key]) or value, _VALUE_WIDTH)
                text = f"{key}={value}"
                if key == "http.response.status_code" and (_int(attributes[key]) or 0) >= 500:
                    text = style.red(text)
                parts.append(text)
                break
    for key in sorted(k for k in attributes if k.startswith("agentwatch.")):
        parts.append(f"{_clean(key, 60)}={_fmt_value(attributes[key])}")
    return "  ".join(parts)


def _trace_tree(spans: list[_Span], style: _Style, indent: str) -> list[str]:
    by_id = {span.span_id: span for span in spans if span.span_id}
    children: dict[str, list[_Span]] = {}
    roots: list[_Span] = []
    for span in spans:
        if span.parent_id and span.parent_id in by_id and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)

    def order(span: _Span) -> int:
        return span.start or 0

    lines: list[str] = []
    seen: set[int] = set()

    def walk(span: _Span, prefix: str, branch: str, orphan: bool) -> None:
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


def _render_traces(traces: _Traces, count: int, stats: _FileStats, style: _Style) -> list[str]:
    title = "Recent requests"
    if not stats.found:
        return [style.bold(title), "  no traces recorded (no traces.jsonl)"]
    if traces.spans == 0:
        return [style.bold(title), "  no traces recorded (traces.jsonl is empty)"]
    if count <= 0:
        return [style.bold(title), f"  {_plural(len(traces.trace_ids), 'trace')} recorded (none requested)"]

    def last_end(item: tuple[str, list[_Span]]) -> int:
        return max((span.end or span.start or 0) for span in item[1])

    chosen = heapq.nlargest(count, traces.recent.items(), key=last_end)
    chosen.sort(key=last_end)
    lines = [style.bold(f"{title} (last {len(chosen)} of {len(traces.trace_ids)} traces, oldest first)")]
    for trace_id, spans in chosen:
        starts = [s.start for s in spans if s.start]
        ends = [s.end for s in spans if s.end]
        first = min(starts) if starts else None
        total_ms = (max(ends) - first) / 1e6 if starts and ends and max(ends) >= first else None
        services = list(dict.fromkeys(span.service for span in spans))
        errors = sum(span.error for span in spans)
        header = [
            "trace " + style.cyan(trace_id),
            _fmt_clock(first),
            _clean(", ".join(services), 60),
            style.dim(_fmt_ms(total_ms)),
            _plural(len(spans), "span"),
        ]
        if errors:
            header.append(style.red(f"{errors} error" + ("" if errors == 1 else "s")))
        lines.append("")
        lines.append("  " + "  ".join(header))
        lines.extend(_trace_tree(spans, style, "    "))
    return lines


# --------------------------------------------------------------------------- metrics


@dataclass
class _Point:
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

    def add(self, other: _Point) -> None:
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

    def copy(self) -> _Point:
        return _Point(**{**self.__dict__, "attributes": dict(self.attributes),
                         "buckets": list(self.buckets) if self.buckets is not None else None})


def _freeze(attributes: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, json.dumps(value, sort_keys=True, default=str)) for key, value in attributes.items()))


def _parse_point(kind: str, unit: str, raw: dict[str, Any]) -> _Point:
    point = _Point(
        kind=kind,
        unit=unit,
        attributes=_attributes(raw.get("attributes")),
        start=_time_ns(raw.get("startTimeUnixNano")),
        time=_time_ns(raw.get("timeUnixNano")),
    )
    if kind in ("sum", "gauge"):
        if "asInt" in raw:
            number = _int(raw["asInt"])
            point.value = float(number) if number is not None else None
        else:
            point.value = _float(raw.get("asDouble"))
        return point
    point.count = max(0, _int(raw.get("count")) or 0)
    point.total = _float(raw.get("sum"))
    point.low = _float(raw.get("min"))
    point.high = _float(raw.get("max"))
    if kind == "histogram":
        bounds = [_float(b) for b in raw.get("explicitBounds") or [] if not isinstance(b, (dict, list))]
        buckets = [_int(c) for c in raw.get("bucketCounts") or [] if not isinstance(c, (dict, list))]
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
class _Metric:
    name: str
    kind: str
    unit: str
    # (resource, scope, attributes, start) -> latest cumulative point, or the summed deltas
    series: dict[tuple[Any, ...], _Point] = field(default_factory=dict)


class _Metrics:
    def __init__(self) -> None:
        self.metrics: dict[str, _Metric] = {}
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
        data = _dict(raw_metric.get(kind))
        unit = str(raw_metric.get("unit") or "")
        temporality = data.get("aggregationTemporality")
        delta = _int(temporality) == 1 or temporality == "AGGREGATION_TEMPORALITY_DELTA"
        metric = self.metrics.get(name)
        if metric is None:
            metric = self.metrics[name] = _Metric(name, kind, unit)
        for raw in _dicts(data.get("dataPoints")):
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

    def merged(self, name: str) -> list[_Point]:
        """One point per attribute set: the series of every process summed."""
        metric = self.metrics.get(name)
        if metric is None:
            return []
        by_attributes: dict[Any, _Point] = {}
        for (_resource, _scope, attributes, _start, kind), point in metric.series.items():
            key = (attributes, kind)
            if key in by_attributes:
                by_attributes[key].add(point)
            else:
                by_attributes[key] = point.copy()
        return list(by_attributes.values())


def _load_metrics(directory: str, stats: _FileStats, resources: _Resources, window: _Window) -> _Metrics:
    metrics = _Metrics()
    for request in _read_requests(directory, METRICS_FILE, stats):
        for resource_metrics in _dicts(request.get("resourceMetrics")):
            attributes = _attributes(_dict(resource_metrics.get("resource")).get("attributes"))
            resources.add(attributes)
            resource_key = _freeze(attributes)
            for scope_metrics in _dicts(resource_metrics.get("scopeMetrics")):
                scope = str(_dict(scope_metrics.get("scope")).get("name") or "")
                for raw_metric in _dicts(scope_metrics.get("metrics")):
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


def _to_ms(unit: str) -> float:
    return {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6}.get(unit, 1000.0)


def _attr(point: _Point, *keys: str) -> Any:
    for key in keys:
        if key in point.attributes:
            return point.attributes[key]
    return None


def _table(rows: list[list[str]], right: set[int], indent: str = "  ") -> list[str]:
    widths = [max(len(_strip_ansi(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(_strip_ansi(cell)))
            cells.append(pad + cell if i in right else cell + pad)
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _render_requests(metrics: _Metrics, style: _Style) -> tuple[list[str], str | None]:
    name = REQUEST_DURATION if REQUEST_DURATION in metrics.metrics else _OLD_REQUEST_DURATION
    points = [p for p in metrics.merged(name) if p.kind == "histogram"]
    if not points:
        return [], None
    unit = metrics.metrics[name].unit or ("s" if name == REQUEST_DURATION else "ms")
    scale = _to_ms(unit)
    starts = [p.start for p in points if p.start]
    times = [p.time for p in points if p.time]
    seconds = (max(times) - min(starts)) / 1e9 if starts and times and max(times) > min(starts) else 0.0

    def rate(count: int) -> str:
        # below a second of observation a rate says nothing
        return f"{count / seconds:.2f}/s" if seconds >= 1.0 else "-"

    by_request: dict[tuple[str, str, str], int] = {}
    routes: dict[str, _Point] = {}
    route_errors: dict[str, int] = {}
    total = errors = 0
    for point in points:
        route = str(_attr(point, "http.route", "http.target") or "(no route)")
        method = str(_attr(point, "http.request.method", "http.method") or "-")
        status_raw = _attr(point, "http.response.status_code", "http.status_code")
        status = _int(status_raw)
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
        + style.dim(f"  ({name}, {_plural(len(points), 'series')} over {_fmt_duration(seconds)})"),
    ]
    error_rate = errors / total if total else 0.0
    summary = f"  {_plural(total, 'request')}, {rate(total)}, {_plural(errors, 'error')} (5xx)"
    summary += ", error rate " + (style.red(f"{error_rate:.1%}") if errors else f"{error_rate:.1%}")
    lines.append(summary)
    lines.append("")
    rows = [["route", "method", "status", "count", "rate"]]
    for (route, method, status_text), count in sorted(by_request.items()):
        status_cell = status_text
        if status_text.isdigit() and int(status_text) >= 500:
            status_cell = style.red(status_text)
        rows.append([_clean(route, 60), _clean(method, 10), status_cell, str(count), rate(count)])
    lines.extend(_table(rows, right={3, 4}))
    lines.append("")
    rows = [["route", "count", "errors", "error %", "p50", "p95", "p99", "mean"]]
    for route, point in sorted(routes.items()):
        route_error = route_errors.get(route, 0)
        cells = [_clean(route, 60), str(point.count),
                 style.red(str(route_error)) if route_error else "0",
                 f"{route_error / point.count:.1%}" if point.count else "-"]
        cells.extend(_histogram_ms(point, q, scale) for q in (0.5, 0.95, 0.99))
        mean = point.total / point.count if point.total is not None and point.count else None
        cells.append(_fmt_ms(mean * scale) if mean is not None else "-")
        rows.append(cells)
    lines.extend(_table(rows, right={1, 2, 3, 4, 5, 6, 7}))
    lines.append(style.dim("  latency percentiles are estimated from histogram buckets (linear interpolation)"))
    return lines, name


# ----------------------------------------------------------------- agent pipeline

_AGENT_METRICS = (
    "agentwatch.intent.classifications", "agentwatch.retrieval.duration", "agentwatch.plan.duration",
    "agentwatch.critique.verdicts", "gen_ai.client.operation.duration",
)


def _combine(points: list[_Point]) -> _Point | None:
    combined: _Point | None = None
    for point in points:
        if combined is None:
            combined = point.copy()
        else:
            combined.add(point)
    return combined


def _by(points: list[_Point], *keys: str) -> dict[str, list[_Point]]:
    groups: dict[str, list[_Point]] = {}
    for point in points:
        label = _attr(point, *keys)
        groups.setdefault("-" if label is None else _clean(str(label), 40), []).append(point)
    return groups


def _histogram_ms(point: _Point | None, q: float, scale: float | None = None) -> str:
    """The ``q`` quantile of a histogram point in ms (``scale``: ms per unit; by default from the point's unit, s)."""
    if point is None or point.bounds is None or point.buckets is None:
        return "-"
    estimate = quantile(point.bounds, point.buckets, q, point.low, point.high)
    if estimate is None:
        return "-"
    return _fmt_ms(estimate * (_to_ms(point.unit or "s") if scale is None else scale))


def _timed_cells(points: list[_Point]) -> tuple[str, str, str, str]:
    """Count, errors (points with ``error.type``), p50 and p95 of a group of duration points, as table cells."""
    combined = _combine(points)
    errors = sum(p.count for p in points if "error.type" in p.attributes)
    return (str(combined.count if combined else 0), str(errors),
            _histogram_ms(combined, 0.5), _histogram_ms(combined, 0.95))


def _mean(point: _Point | None) -> float | None:
    if point is None or not point.count or point.total is None:
        return None
    return point.total / point.count


def _distribution(point: _Point | None) -> str:
    """Integer-valued histogram as ``1: 16  2: 14  3: 3`` (a bucket wider than one shows as a range)."""
    if point is None or point.bounds is None or point.buckets is None:
        return "-"
    parts = []
    for index, count in enumerate(point.buckets):
        if count <= 0:
            continue
        if index == len(point.bounds):
            label = f">{_fmt_num(point.bounds[-1])}"
        else:
            upper = point.bounds[index]
            lower = point.bounds[index - 1] if index else None
            if lower is None or upper - lower <= 1:
                label = _fmt_num(upper) if lower is not None or upper <= 1 else f"≤{_fmt_num(upper)}"
            else:
                label = f"{_fmt_num(lower + 1)}-{_fmt_num(upper)}"
        parts.append(f"{label}: {count}")
    return "  ".join(parts) or "-"


def _sum_value(points: list[_Point]) -> float:
    return sum(p.value or 0 for p in points)


def _render_agent(metrics: _Metrics, style: _Style) -> list[str]:
    """Intents, retrieval, plans and critiques, model calls: the ``/chat`` pipeline in numbers."""
    if not any(name in metrics.metrics for name in _AGENT_METRICS):
        return []
    lines = [style.bold("Agent pipeline") + style.dim("  (agentwatch.* and gen_ai.* metrics)")]

    classifications = metrics.merged("agentwatch.intent.classifications")
    if classifications:
        confidence = _by(metrics.merged("agentwatch.intent.confidence"), "agentwatch.intent.name")
        low = _by(metrics.merged("agentwatch.intent.low_confidence"), "agentwatch.intent.name")
        by_intent = _by(classifications, "agentwatch.intent.name")
        total = _sum_value(classifications)
        classifiers = sorted(_by(classifications, "agentwatch.intent.classifier"))
        lines.append(f"  intents ({_clean(', '.join(classifiers), 60)}): {_fmt_num(total)} classified, "
                     f"{_fmt_num(_sum_value(metrics.merged('agentwatch.intent.low_confidence')))} below the confidence threshold")
        rows = [["intent", "count", "share", "mean confidence", "low confidence"]]
        for intent, points in sorted(by_intent.items(), key=lambda item: (-_sum_value(item[1]), item[0])):
            count = _sum_value(points)
            mean = _mean(_combine(confidence.get(intent, [])))
            rows.append([intent, _fmt_num(count), f"{count / total:.0%}" if total else "-",
                         f"{mean:.2f}" if mean is not None else "-", _fmt_num(_sum_value(low.get(intent, [])))])
        lines.extend(_table(rows, right={1, 2, 3, 4}, indent="    "))

    durations = metrics.merged("agentwatch.retrieval.duration")
    if durations:
        documents = _by(metrics.merged("agentwatch.retrieval.documents"), "gen_ai.data_source.id")
        empty = _by(metrics.merged("agentwatch.retrieval.empty"), "gen_ai.data_source.id")
        top = _by(metrics.merged("agentwatch.retrieval.top_score"), "gen_ai.data_source.id")
        rows = [["data source", "retrievals", "errors", "docs/retrieval", "empty", "mean top score", "p50", "p95"]]
        for source, points in sorted(_by(durations, "gen_ai.data_source.id").items()):
            count, errors, p50, p95 = _timed_cells(points)
            docs_mean = _mean(_combine(documents.get(source, [])))
            top_mean = _mean(_combine(top.get(source, [])))
            rows.append([source, count, errors,
                         _fmt_num(docs_mean) if docs_mean is not None else "-",
                         _fmt_num(_sum_value(empty.get(source, []))),
                         f"{top_mean:.3f}" if top_mean is not None else "-",
                         p50, p95])
        lines.append("  retrieval")
        lines.extend(_table(rows, right={1, 2, 3, 4, 5, 6, 7}, indent="    "))

    plans = metrics.merged("agentwatch.plan.duration")
    if plans:
        iterations = _by(metrics.merged("agentwatch.plan.iterations"), "gen_ai.agent.name")
        first = _by(metrics.merged("agentwatch.plan.first_try_acceptance"), "gen_ai.agent.name")
        rows = [["agent", "plans", "errors", "iterations: plans", "mean", "accepted first try", "p50", "p95"]]
        for agent, points in sorted(_by(plans, "gen_ai.agent.name").items()):
            count, errors, p50, p95 = _timed_cells(points)
            agent_iterations = _combine(iterations.get(agent, []))
            mean = _mean(agent_iterations)
            firsts = first.get(agent, [])
            accepted = sum(p.value or 0 for p in firsts if _attr(p, "agentwatch.plan.accepted") in (True, "true", "True"))
            judged = _sum_value(firsts)
            rows.append([agent, count, errors, _distribution(agent_iterations),
                         f"{mean:.2f}" if mean is not None else "-",
                         f"{_fmt_num(accepted)}/{_fmt_num(judged)} ({accepted / judged:.0%})" if judged else "-",
                         p50, p95])
        lines.append("  plans")
        lines.extend(_table(rows, right={1, 2, 4, 5, 6, 7}, indent="    "))

    verdicts = metrics.merged("agentwatch.critique.verdicts")
    if verdicts:
        rows = [["critic", "critiques", "accepted", "rejected"]]
        for critic, points in sorted(_by(verdicts, "gen_ai.evaluation.name").items()):
            by_verdict = _by(points, "agentwatch.critique.verdict")
            rows.append([critic, _fmt_num(_sum_value(points)), _fmt_num(_sum_value(by_verdict.get("accepted", []))),
                         _fmt_num(_sum_value(by_verdict.get("rejected", [])))])
        lines.append("  critique verdicts")
        lines.extend(_table(rows, right={1, 2, 3}, indent="    "))

    calls = metrics.merged("gen_ai.client.operation.duration")
    if calls:
        tokens = _by(metrics.merged("gen_ai.client.token.usage"), "gen_ai.request.model", "gen_ai.response.model")
        costs = _by(metrics.merged("agentwatch.gen_ai.client.cost"), "gen_ai.request.model", "gen_ai.response.model")
        rows = [["model", "calls", "errors", "input tokens", "output tokens", "cost", "p50", "p95"]]
        for model, points in sorted(_by(calls, "gen_ai.request.model", "gen_ai.response.model").items()):
            count, errors, p50, p95 = _timed_cells(points)
            by_type = _by(tokens.get(model, []), "gen_ai.token.type")
            used = {kind: sum(p.total or 0 for p in by_type.get(kind, [])) for kind in ("input", "output")}
            cost = costs.get(model)
            unit = metrics.metrics["agentwatch.gen_ai.client.cost"].unit if cost else ""
            rows.append([model, count, errors,
                         _fmt_num(used["input"]), _fmt_num(used["output"]),
                         f"{_fmt_num(_sum_value(cost))}{_unit_label(unit)}" if cost else "-",
                         p50, p95])
        lines.append("  model calls")
        lines.extend(_table(rows, right={1, 2, 3, 4, 5, 6, 7}, indent="    "))
    return lines


def _metric_summary(metric: _Metric, points: list[_Point]) -> str:
    unit = _unit_label(metric.unit)
    series = f" ({_plural(len(points), 'series')})" if len(points) > 1 else ""
    if metric.kind == "sum":
        total = sum(p.value or 0 for p in points if p.value is not None)
        return f"sum      {_fmt_num(total)}{unit}{series}"
    if metric.kind == "gauge":
        values = [p.value for p in points if p.value is not None]
        if not values:
            return "gauge    -"
        if len(values) == 1:
            return f"gauge    {_fmt_num(values[0])}{unit}"
        return f"gauge    {_fmt_num(min(values))}..{_fmt_num(max(values))}{unit}{series}"
    count = sum(p.count for p in points)
    totals = [p.total for p in points if p.total is not None]
    mean = sum(totals) / count if totals and count else None
    label = "histo" if metric.kind != "summary" else "summary"
    text = f"{label:<8} count {count}"
    if mean is not None:
        text += f", mean {_fmt_num(mean)}{unit}"
    return text + series


def _render_metrics(metrics: _Metrics, stats: _FileStats, style: _Style) -> list[str]:
    title = style.bold("Metrics")
    if not stats.found:
        return [title, "  no metrics recorded (no metrics.jsonl)"]
    if not metrics.metrics:
        return [title, "  no metrics recorded (metrics.jsonl is empty)"]
    lines, request_metric = _render_requests(metrics, style)
    if not lines:
        lines = [style.bold("Requests"), f"  no {REQUEST_DURATION} recorded"]
    agent = _render_agent(metrics, style)
    if agent:
        lines.append("")
        lines.extend(agent)
    others = sorted(name for name in metrics.metrics if name != request_metric)
    lines.append("")
    lines.append(title + style.dim("  (latest cumulative values, all processes summed)"))
    if not others:
        lines.append("  (no other metrics)")
    rows = []
    for name in others[:_MAX_OTHER_METRICS]:
        metric = metrics.metrics[name]
        rows.append([_clean(name, 70), _metric_summary(metric, metrics.merged(name))])
    if rows:
        lines.extend(_table(rows, right=set()))
    if len(others) > _MAX_OTHER_METRICS:
        lines.append(f"  … and {len(others) - _MAX_OTHER_METRICS} more")
    return lines


# --------------------------------------------------------------------------- logs


@dataclass(order=True)
class _Log:
    time: int
    sequence: int
    severity: str = field(compare=False)
    number: int = field(compare=False)
    logger: str = field(compare=False)
    body: str = field(compare=False)
    trace_id: str = field(compare=False)


def _body_text(value: Any) -> str:
    body = _any_value(value)
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(body, ensure_ascii=False, default=str)


class _Logs:
    def __init__(self, keep: int) -> None:
        self.keep = max(0, keep)
        self.heap: list[_Log] = []
        self.count = 0
        self.errors = 0


def _load_logs(directory: str, keep: int, stats: _FileStats, resources: _Resources, window: _Window) -> _Logs:
    logs = _Logs(keep)
    for request in _read_requests(directory, LOGS_FILE, stats):
        for resource_logs in _dicts(request.get("resourceLogs")):
            resources.add(_attributes(_dict(resource_logs.get("resource")).get("attributes")))
            for scope_logs in _dicts(resource_logs.get("scopeLogs")):
                logger = str(_dict(scope_logs.get("scope")).get("name") or "-")
                for raw in _dicts(scope_logs.get("logRecords")):
                    logs.count += 1
                    stamp = _time_ns(raw.get("timeUnixNano")) or _time_ns(raw.get("observedTimeUnixNano")) or 0
                    window.add(stamp or None)
                    number = _int(raw.get("severityNumber")) or 0
                    if number >= 17:
                        logs.errors += 1
                    if logs.keep == 0:
                        continue
                    record = _Log(
                        time=stamp,
                        sequence=logs.count,
                        severity=_severity(raw.get("severityNumber"), raw.get("severityText")),
                        number=number,
                        logger=_clean(logger, 40),
                        body=_clean(_body_text(raw.get("body")), _LOG_BODY_WIDTH),
                        trace_id=_hex_id(raw.get("traceId"))[:8] or "-",
                    )
                    if len(logs.heap) < logs.keep:
                        heapq.heappush(logs.heap, record)
                    else:
                        heapq.heappushpop(logs.heap, record)
    return logs


def _render_logs(logs: _Logs, stats: _FileStats, style: _Style) -> list[str]:
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
        rows.append([style.dim(_fmt_clock(record.time or None)), severity, trace, record.logger, record.body])
    if rows:
        lines.extend(_table(rows, right=set()))
    return lines


# --------------------------------------------------------------------------- render


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
    style = _Style(color)
    resources = _Resources()
    window = _Window()
    trace_stats, metric_stats, log_stats = _FileStats(TRACES_FILE), _FileStats(METRICS_FILE), _FileStats(LOGS_FILE)
    trace_data = _load_traces(directory, traces, trace_stats, resources, window)
    metric_data = _load_metrics(directory, metric_stats, resources, window)
    log_data = _load_logs(directory, logs, log_stats, resources, window)

    lines = [style.bold("agentwatch report") + "  " + _clean(os.path.abspath(directory))]
    if resources.services:
        services = [
            name + (f" {version}" if version != "-" else "") + (f" ({distro})" if distro != "-" else "")
            for name, version, distro in resources.services
        ]
        lines.append("  services:  " + _clean(", ".join(services), 200))
        if len(resources.instances) > 1:
            lines.append(f"  instances: {len(resources.instances)} (service.instance.id)")
    if window.first and window.last:
        first, last = _local(window.first), _local(window.last)
        if first and last:
            end = last.strftime("%H:%M:%S") if first.date() == last.date() else last.strftime("%Y-%m-%d %H:%M:%S")
            span = _fmt_duration((window.last - window.first) / 1e9)
            lines.append(f"  time:      {first.strftime('%Y-%m-%d %H:%M:%S')} → {end} ({span})")
    recorded = [
        f"{_plural(trace_data.spans, 'span')} in {_plural(len(trace_data.trace_ids), 'trace')}",
        f"{_plural(metric_data.points, 'metric point')} ({len(metric_data.metrics)} metrics)",
        _plural(log_data.count, "log record"),
    ]
    lines.append("  recorded:  " + ", ".join(recorded))
    if trace_data.errors or log_data.errors:
        lines.append("  " + style.red(
            f"errors:    {_plural(trace_data.errors, 'error span')}, {_plural(log_data.errors, 'error log')}"
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
        _render_traces(trace_data, traces, trace_stats, style),
        _render_metrics(metric_data, metric_stats, style),
        _render_logs(log_data, log_stats, style),
    ):
        lines.append("")
        lines.extend(section)
    return "\n".join(lines) + "\n"
