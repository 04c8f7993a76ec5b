"""The report's Resilience section: retries, Gemini 429s, circuit breakers and rate limits in numbers."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.report._aggregate import Metrics, Point
from agentwatch.report._text import Style, clean, fmt_num, table

_STATE_NAMES = {value: name for name, value in sc.BREAKER_STATE_VALUES.items()}
_RESILIENCE_METRICS = (*sc.RESILIENCE_METRICS_BY_NAME,)


def _label(point: Point, *keys: str) -> str:
    for key in keys:
        value = point.attributes.get(key)
        if value not in (None, ""):
            return clean(str(value), 40)
    return "-"


def _sum(points: list[Point]) -> float:
    return sum(p.value or 0 for p in points)


def _breaker_states(metrics: Metrics) -> dict[tuple[str, str], int]:
    """The latest state of each breaker: the worst over the processes (a gauge is not summed)."""
    metric = metrics.metrics.get(sc.BREAKER_STATE_METRIC)
    states: dict[tuple[str, str], int] = {}
    for point in (metric.series.values() if metric else ()):
        key = (_label(point, sc.BREAKER_NAME), _label(point, sc.BREAKER_LIBRARY))
        if point.value is not None:
            states[key] = max(states.get(key, 0), int(point.value))
    return states


def render_resilience(metrics: Metrics, style: Style) -> list[str]:
    """Retries by source and error, Gemini 429s, breakers (state, transitions, refusals), rate-limit rejections,
    and the 429s the app answered per route; nothing when none of it was recorded."""
    requests = [p for p in metrics.merged(sc.HTTP_SERVER_REQUEST_DURATION_METRIC)
                if str(p.attributes.get(sc.HTTP_RESPONSE_STATUS_CODE)) == "429"]
    if not requests and not any(name in metrics.metrics for name in _RESILIENCE_METRICS):
        return []
    lines = [style.bold("Resilience") + style.dim("  (agentwatch.retry.*, agentwatch.circuit_breaker.*, agentwatch.rate_limit.*)")]

    attempts = metrics.merged(sc.RETRY_FAILED_ATTEMPTS_METRIC)
    if attempts:
        grouped: dict[tuple[str, str, str], dict[str, float]] = {}
        for point in attempts:
            key = (_label(point, sc.RETRY_SOURCE), _label(point, sc.GEN_AI_REQUEST_MODEL, sc.RETRY_TARGET),
                   _label(point, sc.ERROR_TYPE))
            outcomes = grouped.setdefault(key, {})
            outcome = _label(point, sc.RETRY_OUTCOME)
            outcomes[outcome] = outcomes.get(outcome, 0) + (point.value or 0)
        rows = [["source", "model / target", "error", "retried", "gave up"]]
        for (source, what, error), outcomes in sorted(grouped.items()):
            rows.append([source, what, error, fmt_num(outcomes.get("retried", 0)), fmt_num(outcomes.get("exhausted", 0))])
        lines.append("  failed attempts of retry loops")
        lines.extend(table(rows, right={3, 4}, indent="    "))

    limited = metrics.merged(sc.GENAI_RATE_LIMIT_DELAY_METRIC)
    if limited:
        rows = [["model", "429s", "mean advised delay"]]
        by_model: dict[str, list[Point]] = {}
        for point in limited:
            by_model.setdefault(_label(point, sc.GEN_AI_REQUEST_MODEL), []).append(point)
        for model, points in sorted(by_model.items()):
            count = sum(p.count for p in points)
            total = sum(p.total or 0 for p in points)
            rows.append([model, fmt_num(count), f"{fmt_num(total / count)} s" if count else "-"])
        lines.append("  Gemini rate limits (429)")
        lines.extend(table(rows, right={1, 2}, indent="    "))

    states = _breaker_states(metrics)
    transitions = metrics.merged(sc.BREAKER_TRANSITIONS_METRIC)
    refused = metrics.merged(sc.BREAKER_REJECTED_METRIC)
    if states or transitions or refused:
        def of(points: list[Point], key: tuple[str, str]) -> list[Point]:
            return [p for p in points if (_label(p, sc.BREAKER_NAME), _label(p, sc.BREAKER_LIBRARY)) == key]

        keys = set(states) | {(_label(p, sc.BREAKER_NAME), _label(p, sc.BREAKER_LIBRARY)) for p in transitions + refused}
        rows = [["breaker", "library", "state", "opened", "transitions", "refused calls"]]
        for key in sorted(keys):
            state = _STATE_NAMES.get(states[key], "?") if key in states else "-"
            if state == "open":
                state = style.red(state)
            changes = of(transitions, key)
            opened = _sum([p for p in changes if p.attributes.get(sc.BREAKER_STATE) == "open"])
            rows.append([key[0], key[1], state, fmt_num(opened), fmt_num(_sum(changes)), fmt_num(_sum(of(refused, key)))])
        lines.append("  circuit breakers")
        lines.extend(table(rows, right={3, 4, 5}, indent="    "))

    rejections = metrics.merged(sc.RATE_LIMIT_REJECTIONS_METRIC)
    if rejections or requests:
        rows: list[list[Any]] = [["rate limit", "rejected"]]
        for point in sorted(rejections, key=lambda p: _label(p, sc.RATE_LIMIT_LIMIT)):
            rows.append([f"slowapi {_label(point, sc.RATE_LIMIT_LIMIT)}", fmt_num(point.value)])
        by_route: dict[str, int] = {}
        for point in requests:
            route = _label(point, sc.HTTP_ROUTE)
            by_route[route] = by_route.get(route, 0) + point.count
        for route, count in sorted(by_route.items()):
            rows.append([f"answered 429 on {route}", fmt_num(count)])
        lines.append("  rate limits")
        lines.extend(table(rows, right={1}, indent="    "))
    return lines
