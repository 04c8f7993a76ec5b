"""The catalogue's Markdown tables in docs/telemetry.md, generated from :mod:`agentwatch.semconv`.

Kept apart from the catalogue itself: the instrumentors import semconv on their start-up path, and
only ``python -m agentwatch._docs`` and the catalogue tests render tables.
"""

from __future__ import annotations

from agentwatch import semconv as sc


def markdown(spans: tuple[sc.Span, ...] | None = None, metrics: tuple[sc.Metric, ...] | None = None) -> str:
    """Span and metric tables of docs/telemetry.md, generated from the catalogue (the agent one by default).

    An empty ``spans`` leaves the span table out (the web layer catalogues metrics only).
    """
    spans = sc.SPANS if spans is None else spans
    metrics = sc.METRICS if metrics is None else metrics

    def code(items) -> str:
        return ", ".join(f"`{item}`" for item in items) or "-"

    rows = []
    if spans:
        rows += ["| Span | Kind | Attributes | Opt-in content | Events | Notes |", "|---|---|---|---|---|---|"]
    for span in spans:
        rows.append(
            f"| `{span.name}` | {span.kind} | {code(span.attributes)} | {code(span.content_attributes)} | "
            f"{code(span.events)} | {span.notes} |"
        )
    if spans:
        rows.append("")
    rows += ["| Metric | Type | Unit | Attributes | Buckets | Meaning |", "|---|---|---|---|---|---|"]
    for metric in metrics:
        buckets = ", ".join(f"{b:g}" for b in metric.buckets) if metric.buckets else "-"
        rows.append(
            f"| `{metric.name}` | {metric.instrument} | `{metric.unit}` | {code(metric.attributes)} | "
            f"{buckets} | {metric.description} |"
        )
    return "\n".join(rows)


def genai_markdown() -> str:
    """The Gemini span and metric tables."""
    return markdown(sc.GENAI_SPANS, sc.GENAI_METRICS)


def web_markdown() -> str:
    """The web layer's metric table (health checks, error responses)."""
    return markdown((), sc.WEB_METRICS)


def vectordb_markdown() -> str:
    """The chromadb span and metric tables."""
    return markdown(sc.VECTORDB_SPANS, sc.VECTORDB_METRICS)


def cache_queue_markdown() -> str:
    """The caches and job queues metric table."""
    return markdown((), sc.CACHE_QUEUE_METRICS)


def resilience_markdown() -> str:
    """The retry, circuit-breaker and rate-limit tables."""
    return markdown(sc.RESILIENCE_SPANS, sc.RESILIENCE_METRICS)


def mcp_markdown() -> str:
    """The MCP span and metric tables."""
    return markdown(sc.MCP_SPANS, sc.MCP_METRICS)
