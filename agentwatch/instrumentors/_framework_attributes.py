"""Attributes an agent framework hands to the model-call span it does not record itself.

Google ADK stands its own inference span down when a GenAI instrumentation records Gemini calls, and
passes what only it knows -- the calling agent's ``gen_ai.agent.name``, ``gen_ai.conversation.id`` (the
ADK session), ``gcp.vertex.agent.invocation_id`` and ``gcp.vertex.agent.event_id`` -- to that
instrumentation through a context key (the official google-genai instrumentation's
``GENERATE_CONTENT_EXTRA_ATTRIBUTES_CONTEXT_KEY``). :mod:`agentwatch.instrumentors.adk` carries the same
mapping under agentwatch's key (:func:`carrying`), and agentwatch's Gemini span reads it at its start
(:func:`framework_attributes`), so a model span says which agent made the call, as it does with the
official instrumentation, and a sampler sees it at span start.

The mapping is checked here, not trusted: string keys, scalar values (str, bool, int, float), at most
:data:`MAX_ATTRIBUTES` of them, strings cut to :data:`MAX_CHARS`; anything else is left out (and a mapping
that cannot be read costs the span its attributes, never the call).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context

from agentwatch.distro.guard import run

__all__ = ["KEY", "MAX_ATTRIBUTES", "MAX_CHARS", "carrying", "framework_attributes"]

KEY = otel_context.create_key("agentwatch.gen_ai.framework_attributes")
MAX_ATTRIBUTES = 16
MAX_CHARS = 256  # names and ids; a longer value is not one of those


def _checked(mapping: Mapping[Any, Any]) -> dict[str, str | bool | int | float]:
    out: dict[str, str | bool | int | float] = {}
    for key, value in mapping.items():
        if len(out) >= MAX_ATTRIBUTES:
            break
        if not isinstance(key, str) or not key:
            continue
        if isinstance(value, str):
            out[key] = value[:MAX_CHARS]
        elif isinstance(value, (bool, int, float)):
            out[key] = value
    return out


@contextmanager
def carrying(attributes: Any) -> Iterator[None]:
    """``attributes`` (a mapping) for the model calls made inside the block; nothing if it is not one."""
    checked = run("agent framework attributes", _checked, attributes, default=None,
                  outcome="the model span goes without them") if isinstance(attributes, Mapping) else None
    if not checked:
        yield
        return
    token = otel_context.attach(otel_context.set_value(KEY, checked))
    try:
        yield
    finally:
        otel_context.detach(token)


def framework_attributes() -> dict[str, str | bool | int | float] | None:
    """What the framework handed over for the current model call, or ``None``."""
    value = otel_context.get_value(KEY)
    return value if isinstance(value, dict) else None
