"""Gemini safety blocks as guardrail events: a prompt the API refused (``prompt_feedback.block_reason``)
or a candidate its safety filters stopped (a safety finish reason, or a safety rating with
``blocked=True``) becomes one ``agentwatch.gen_ai.guardrail`` log event parented to the call span --
the GenAI conventions define no guardrail event yet -- and one ``agentwatch.gen_ai.guardrail.blocks``.

The values are the provider's: ``SAFETY``, ``PROHIBITED_CONTENT``, ``HARM_CATEGORY_HATE_SPEECH``,
``HIGH``... (the SDK enums' names; anything that is not an upper-case name is ``_OTHER`` on the metric,
so a changed API cannot blow up its cardinality). Unary responses are read once; every chunk of a
stream is read as it arrives (a block can come in any chunk), each block reported once per call.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from agentwatch import semconv as sc
from agentwatch.instrumentors.gemini.extract import field
from agentwatch.instrumentors.gemini.telemetry import Telemetry

__all__ = ["observe"]

#: Finish reasons that mean the candidate was stopped by a safety or policy filter (google-genai FinishReason).
SAFETY_FINISH_REASONS = frozenset({
    "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "MODEL_ARMOR",
})
_UNSPECIFIED = frozenset({"", "BLOCKED_REASON_UNSPECIFIED", "FINISH_REASON_UNSPECIFIED", "NONE"})
_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_MAX_MESSAGE = 512
_MAX_RATINGS = 32
_MAX_CANDIDATES = 8  # the API's own limit on candidate_count


class GuardedCall(Protocol):
    """What a guardrail observation needs of a Gemini call (:class:`~.generate_content.GenerateContentCall`)."""

    tel: Telemetry
    ctx: Any
    metric_base: dict[str, Any]
    guardrails_seen: set[tuple[str, int]]


def _name(value: Any) -> str:
    """An SDK enum (or its string) as the provider's upper-case name: ``FinishReason.SAFETY`` -> ``SAFETY``."""
    if value is None:
        return ""
    name = getattr(value, "name", None)
    text = name if isinstance(name, str) else str(getattr(value, "value", value))
    return text.strip()[:64].upper()


def _bounded(name: str) -> str:
    return name if _NAME.match(name) else "_OTHER"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _ratings(ratings: Any) -> tuple[list[dict[str, Any]], str]:
    """The ratings as the provider gave them, and the first blocked rating's category ('' if none)."""
    out: list[dict[str, Any]] = []
    blocked_category = ""
    if not isinstance(ratings, (list, tuple)):
        return out, blocked_category
    for rating in ratings[:_MAX_RATINGS]:
        entry: dict[str, Any] = {}
        for key in ("category", "probability", "severity"):
            value = _name(field(rating, key))
            if value:
                entry[key] = value
        for key in ("probability_score", "severity_score"):
            value = _number(field(rating, key))
            if value is not None:
                entry[key] = value
        blocked = field(rating, "blocked")
        if isinstance(blocked, bool):
            entry["blocked"] = blocked
            if blocked and not blocked_category:
                blocked_category = entry.get("category", "")
        if entry:
            out.append(entry)
    return out, blocked_category


def _emit(call: GuardedCall, response: Any, target: str, reason: str, message: Any, ratings: Any,
          index: int | None) -> None:
    key = (target, index if index is not None else -1)
    if key in call.guardrails_seen:  # a stream repeats ratings / finish reasons: one event per block
        return
    call.guardrails_seen.add(key)
    rated, category = _ratings(ratings)
    metric = {
        **{k: v for k, v in call.metric_base.items() if k in (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL)},
        sc.GENAI_GUARDRAIL_TARGET: target,
        sc.GENAI_GUARDRAIL_REASON: _bounded(reason),
    }
    if category:
        metric[sc.GENAI_GUARDRAIL_CATEGORY] = _bounded(category)
    attributes: dict[str, Any] = {**metric, sc.GENAI_GUARDRAIL_REASON: reason or "_OTHER"}
    if category:
        attributes[sc.GENAI_GUARDRAIL_CATEGORY] = category
    response_id = field(response, "response_id")
    if isinstance(response_id, str) and response_id:
        attributes[sc.GEN_AI_RESPONSE_ID] = response_id[:256]
    if isinstance(message, str) and message:
        attributes[sc.GENAI_GUARDRAIL_MESSAGE] = message[:_MAX_MESSAGE]
    if rated:
        attributes[sc.GENAI_GUARDRAIL_RATINGS] = json.dumps(rated, ensure_ascii=False)
    if index is not None:
        attributes[sc.GENAI_GUARDRAIL_CANDIDATE] = index
    call.tel.logger.emit(event_name=sc.GENAI_GUARDRAIL_EVENT, attributes=attributes, context=call.ctx)
    call.tel.guardrail_blocks.add(1, metric)


def observe(call: GuardedCall, response: Any) -> None:
    """Report the safety blocks in ``response`` (a unary response or one stream chunk) once per call."""
    if response is None:
        return
    feedback = field(response, "prompt_feedback")
    if feedback is not None:
        reason = _name(field(feedback, "block_reason"))
        if reason not in _UNSPECIFIED:
            _emit(call, response, "prompt", reason, field(feedback, "block_reason_message"),
                  field(feedback, "safety_ratings"), None)
    candidates = field(response, "candidates")
    if not isinstance(candidates, (list, tuple)):
        return
    for position, candidate in enumerate(candidates[:_MAX_CANDIDATES]):
        raw_finish, ratings = field(candidate, "finish_reason"), field(candidate, "safety_ratings")
        if raw_finish is None and not ratings:  # most stream chunks: nothing to read
            continue
        finish = _name(raw_finish)
        rated_blocked = isinstance(ratings, (list, tuple)) and any(field(r, "blocked") is True for r in ratings)
        if finish in SAFETY_FINISH_REASONS or rated_blocked:
            index = field(candidate, "index")
            index = index if isinstance(index, int) and not isinstance(index, bool) else position
            reason = finish if finish in SAFETY_FINISH_REASONS else "SAFETY"  # a blocked rating, stream mid-way
            _emit(call, response, "response", reason, field(candidate, "finish_message"), ratings, index)
