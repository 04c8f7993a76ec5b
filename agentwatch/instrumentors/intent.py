"""
Intent-classification instrumentation: the app's own classifier functions become
``classify_intent {classifier}`` spans and bounded intent metrics.

Zero code: name the functions in ``AGENTWATCH_INTENT_TARGETS`` and run the app
under ``opentelemetry-instrument``::

    AGENTWATCH_INTENT_TARGETS=intents:classify opentelemetry-instrument python app.py

From code: ``@agentwatch.intent_classifier`` or ``with agentwatch.intent_classification(...)``
(see :mod:`agentwatch.instrumentors.api`).

The intent and confidence are read from what the function returns -- a label
string, ``(label, confidence)``, a dict / dataclass / pydantic model / object
with ``intent|label|name|category`` and ``confidence|score|probability``, or a
ranked list of such candidates -- or from ``AGENTWATCH_INTENT_EXTRACTOR``.
Metrics carry the intent folded into ``other`` beyond
``AGENTWATCH_INTENT_MAX_DISTINCT`` distinct values; the span keeps the real one.

Usage
-----

.. code:: python

    from agentwatch.instrumentors.intent import AgentwatchIntentInstrumentor

    AgentwatchIntentInstrumentor().instrument()   # reads AGENTWATCH_INTENT_TARGETS

API
---
"""

from __future__ import annotations

import threading
from typing import Any

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.instrumentors._agents import extract
from agentwatch.instrumentors._agents.calls import Call, Role
from agentwatch.instrumentors._agents.instrumentor import AgentInstrumentor
from agentwatch.instrumentors._agents.settings import agent_settings

__all__ = ["AgentwatchIntentInstrumentor", "IntentRole", "ROLE"]

OTHER = "other"
_MAX_LABEL_LENGTH = 64


class IntentFolder:
    """Keeps the first ``limit`` distinct intents; any later new one becomes ``other``."""

    def __init__(self, limit: int):
        self.limit = limit
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def fold(self, label: str) -> str:
        if len(label) > _MAX_LABEL_LENGTH:
            return OTHER
        if label in self.seen:
            return label
        with self._lock:
            if label in self.seen:
                return label
            if len(self.seen) >= self.limit:
                return OTHER
            self.seen.add(label)
            return label


class IntentRole(Role):
    role = "intent"
    entry_point = "agentwatch_intent"
    extractor_variable = ev.AGENTWATCH_INTENT_EXTRACTOR

    def configure(self) -> None:
        agent = agent_settings()
        self.folder = IntentFolder(agent.intent_max_distinct)
        self.low_confidence = agent.intent_low_confidence

    def span_name(self, name: str) -> str:
        return f"classify_intent {name}"

    def start_attributes(self, call: Call) -> dict[str, Any]:
        return {sc.INTENT_CLASSIFIER: call.name}

    def finish(self, call: Call, result: Any) -> None:
        label, confidence = extract.extract_intent(result)
        if label is None:
            return  # unknown shape: the span stays, without intent attributes
        span = call.span
        span.set_attribute(sc.INTENT_NAME, label)
        attributes = {sc.INTENT_CLASSIFIER: call.name, sc.INTENT_NAME: self.folder.fold(label)}
        instruments = self.instruments()
        instruments["agentwatch.intent.classifications"].add(1, attributes)
        if confidence is not None:
            low = confidence < self.low_confidence
            span.set_attribute(sc.INTENT_CONFIDENCE, confidence)
            span.set_attribute(sc.INTENT_LOW_CONFIDENCE, low)
            instruments["agentwatch.intent.confidence"].record(confidence, attributes)
            if low:
                instruments["agentwatch.intent.low_confidence"].add(1, attributes)


ROLE = IntentRole()


class AgentwatchIntentInstrumentor(AgentInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_intent``."""

    roles = ((ROLE, ev.AGENTWATCH_INTENT_TARGETS),)
