"""
Retrieval (RAG) instrumentation: the app's own retrieval functions become GenAI
``retrieval {gen_ai.data_source.id}`` spans, with the database / vector-store
spans they cause nested underneath, and retrieval metrics.

Zero code::

    AGENTWATCH_RAG_TARGETS=knowledge:search=kb opentelemetry-instrument python app.py

From code: ``@agentwatch.retriever`` or ``with agentwatch.retrieval("kb") as step: step.record(docs)``.

Documents are read from what the function returns (a list of dicts /
dataclasses / pydantic models / objects with ``id`` and ``score``/``distance``,
LangChain ``Document`` or ``(Document, score)`` lists, chromadb query results,
or a container with ``documents``/``results``/``hits``), or through
``AGENTWATCH_RAG_EXTRACTOR``. By default only ids, counts and scores are
recorded (``gen_ai.retrieval.documents`` as ``[{"id", "score"}]``); the query
text and document content are added only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY`` (or
``SPAN_AND_EVENT``), like GenAI message content, and like it are scrubbed and
cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``.

Usage
-----

.. code:: python

    from agentwatch.instrumentors.rag import AgentwatchRAGInstrumentor

    AgentwatchRAGInstrumentor().instrument()   # reads AGENTWATCH_RAG_TARGETS

API
---
"""

from __future__ import annotations

import json
from typing import Any

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.instrumentors._agents import extract
from agentwatch.instrumentors._agents.calls import Call, Role
from agentwatch.instrumentors._agents.instrumentor import AgentInstrumentor
from agentwatch.instrumentors._agents.settings import capture_content, clip

__all__ = ["AgentwatchRAGInstrumentor", "RetrievalRole", "ROLE"]

_MAX_DOCUMENTS_ON_SPAN = 100


class RetrievalRole(Role):
    role = "rag"
    entry_point = "agentwatch_rag"
    extractor_variable = ev.AGENTWATCH_RAG_EXTRACTOR

    def span_name(self, name: str) -> str:
        return f"retrieval {name}"

    def start_attributes(self, call: Call) -> dict[str, Any]:
        attributes: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: "retrieval", sc.GEN_AI_DATA_SOURCE_ID: call.name}
        k = extract.top_k(call.kwargs)
        if k is not None:
            attributes[sc.GEN_AI_REQUEST_TOP_K] = k
        call.state = capture_content()  # the settings when content is captured, read once per call
        if call.state:
            query = extract.query_text(call.args, call.kwargs)
            if query is not None:
                attributes[sc.GEN_AI_RETRIEVAL_QUERY_TEXT] = clip(query, call.state)
        return attributes

    def finish(self, call: Call, result: Any) -> None:
        instruments = self.instruments()
        source = {sc.GEN_AI_DATA_SOURCE_ID: call.name}
        instruments["agentwatch.retrieval.duration"].record(call.duration, source)
        found = extract.extract_documents(result)
        if found is None:
            return  # unknown shape: duration only, no document attributes
        span = call.span
        count = len(found.documents)
        span.set_attribute(sc.RETRIEVAL_DOCUMENT_COUNT, count)
        instruments["agentwatch.retrieval.documents"].record(count, source)
        if count == 0:
            instruments["agentwatch.retrieval.empty"].add(1, source)
        documents = []
        for document in found.documents[:_MAX_DOCUMENTS_ON_SPAN]:
            entry: dict[str, Any] = {}
            if document.id is not None:
                entry["id"] = document.id
            if document.score is not None:
                entry["score"] = document.score
            if call.state and document.content is not None:
                entry["content"] = clip(document.content, call.state)
            documents.append(entry)
        if any(documents):
            span.set_attribute(sc.GEN_AI_RETRIEVAL_DOCUMENTS, json.dumps(documents, ensure_ascii=False))
        top = found.top_score()
        if top is not None:
            span.set_attribute(sc.RETRIEVAL_TOP_SCORE, top)
            span.set_attribute(sc.RETRIEVAL_SCORE_KIND, found.score_kind)
            instruments["agentwatch.retrieval.top_score"].record(top, {**source, sc.RETRIEVAL_SCORE_KIND: found.score_kind})

    def failed(self, call: Call, error: BaseException) -> None:
        self.instruments()["agentwatch.retrieval.duration"].record(
            call.duration, {sc.GEN_AI_DATA_SOURCE_ID: call.name, sc.ERROR_TYPE: type(error).__qualname__}
        )


ROLE = RetrievalRole()


class AgentwatchRAGInstrumentor(AgentInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_rag``."""

    roles = ((ROLE, ev.AGENTWATCH_RAG_TARGETS),)
