"""``gen_ai.evaluation.result`` events: the critics' verdicts and any other evaluator's, as the GenAI
semantic conventions define them -- a log record (an *event*) named ``gen_ai.evaluation.result``,
parented to the span of the operation evaluated (its trace and span ids), with
``gen_ai.evaluation.name`` / ``score.value`` / ``score.label`` / ``explanation``, and ``error.type`` /
``gen_ai.response.id`` when known.

The critic role (:mod:`agentwatch.instrumentors.planner`) emits one per verdict; apps with other
evaluators call :func:`record_evaluation` (``agentwatch.record_evaluation``). Explanations are
content: recorded only with content capture on (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``,
any mode),
scrubbed and cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS`` here, and scrubbed again on export like
every log record. ``AGENTWATCH_EVALUATION_SPAN_EVENTS=true`` also adds the same attributes as a span
event on the evaluated span (what agentwatch emitted before the conventions moved events to logs).

Bad input never raises into the app: a name, label or id is text cut to 256 characters; a score
is a finite number (a numeric string is read, ``NaN``/``inf``/non-numbers are dropped).
"""

from __future__ import annotations

import math
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, get_logger

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.distro.settings import settings
from agentwatch.instrumentors import _genai_common as g
from agentwatch.instrumentors._agents.settings import clip
from agentwatch.version import __version__

__all__ = ["bind", "emit_evaluation", "record_evaluation", "score_value"]

#: The scope of the evaluation events (the agent instrumentors' scope).
SCOPE = "agentwatch.instrumentors"
_MAX_TEXT = 256

_lock = threading.Lock()
_provider: Any = None
_logger: Logger | None = None


def bind(logger_provider: Any = None) -> None:
    """Emit through ``logger_provider`` (None: the global one); the planner instrumentor binds its own."""
    global _provider, _logger  # the instrumentor's binding, one per process
    with _lock:
        _provider, _logger = logger_provider, None


def _get_logger() -> Logger:
    global _logger  # noqa: PLW0603 - cached per binding
    logger = _logger
    if logger is None:
        with _lock:
            if _logger is None:
                _logger = get_logger(SCOPE, __version__, logger_provider=_provider)
            logger = _logger
    return logger


def score_value(score: Any) -> float | None:
    """A score as a finite float: numbers and numeric strings; bools, NaN, inf and the rest are None."""
    if score is None or isinstance(score, bool):
        return None
    if isinstance(score, (str, bytes)):
        score = score.strip()[:64]
    try:
        number = float(score)
    except Exception:  # noqa: BLE001 - not a number, too large, or an app object whose __float__ raises
        return None
    return number if math.isfinite(number) else None


def _text(value: Any, limit: int | None = _MAX_TEXT) -> str | None:
    """``value`` as text cut to ``limit`` characters; None for None, empty text or an unprintable object."""
    if value is None:
        return None
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - an app object whose __str__ raises: the value is dropped, the event kept
        return None
    if not text:
        return None
    return text if limit is None else text[:limit]


def emit_evaluation(
    name: Any,
    *,
    score: Any = None,
    label: Any = None,
    explanation: Any = None,
    response_id: Any = None,
    error_type: Any = None,
    span: Any = None,
) -> dict[str, Any]:
    """Emit one ``gen_ai.evaluation.result`` event parented to ``span`` (default: the current span)
    and, with ``AGENTWATCH_EVALUATION_SPAN_EVENTS``, the span event too; returns its attributes."""
    target = span if isinstance(span, trace.Span) else trace.get_current_span()
    attributes: dict[str, Any] = {sc.GEN_AI_EVALUATION_NAME: _text(name) or "unknown"}
    value = score_value(score)
    if value is not None:
        attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE] = value
    for key, raw in ((sc.GEN_AI_EVALUATION_SCORE_LABEL, label), (sc.GEN_AI_RESPONSE_ID, response_id),
                     (sc.ERROR_TYPE, error_type)):
        text = _text(raw)
        if text is not None:
            attributes[key] = text
    capture = g.capture_settings() if explanation is not None else None
    if capture is not None and capture.enabled:  # any capture mode: the explanation goes to an event
        text = _text(explanation, None)  # clip() bounds the work and says how much it cut
        if text:
            attributes[sc.GEN_AI_EVALUATION_EXPLANATION] = clip(text, capture)
    context = trace.set_span_in_context(target) if target.get_span_context().is_valid else None
    _get_logger().emit(event_name=sc.EVALUATION_EVENT, attributes=attributes, context=context)
    if settings().agent.evaluation_span_events and target.is_recording():
        target.add_event(sc.EVALUATION_EVENT, attributes)
    return attributes


def record_evaluation(
    name: str,
    *,
    score: float | str | None = None,
    label: str | None = None,
    explanation: str | None = None,
    response_id: str | None = None,
    error_type: str | None = None,
    span: trace.Span | None = None,
) -> None:
    """Record the result of an evaluation of GenAI output (an LLM judge, a rule, a human rating) as a
    ``gen_ai.evaluation.result`` event -- the one agentwatch's critics emit.

    ``name`` is the evaluation (``"relevance"``), ``score`` a number and/or ``label`` a category
    (``"pass"``), ``explanation`` recorded only with content capture on (scrubbed), ``response_id``
    the evaluated completion's ``gen_ai.response.id``, ``error_type`` set when the evaluation itself
    failed. The event is parented to ``span`` (default: the current span), the operation evaluated.
    Never raises: a bad value is dropped, a failure is reported once on agentwatch's logger.
    """
    guard.run(
        "evaluation event", emit_evaluation, name, score=score, label=label, explanation=explanation,
        response_id=response_id, error_type=error_type, span=span, outcome="the evaluation is not recorded",
    )
