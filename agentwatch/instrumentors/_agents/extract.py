"""Reading what an agent step returned: an intent, documents or a verdict, from the common shapes.

str, tuple, dict, dataclass, pydantic model, object attributes, lists, chromadb and LangChain
results; and the query text / ``top_k`` of a retrieval from its arguments. An unknown shape gives
``None`` (or an empty :class:`Verdict`), never an exception of ours. Pure functions of their
arguments: nothing here imports OpenTelemetry.

The roles call these through the module (``extract.extract_intent(...)``), so the fault-injection
tests (``tests/_agentwatch_faults.py``) can replace them in one place.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: "No value": a field that is absent, or a call whose result is unknown (it raised, or an
#: extractor failed). Distinct from ``None``, which a function may well return.
MISSING: Any = object()

_INTENT_KEYS = ("intent", "label", "name", "category", "class_name", "cls", "prediction", "predicted_label")
_CONFIDENCE_KEYS = ("confidence", "score", "probability", "prob", "p")
_ID_KEYS = ("id", "doc_id", "document_id", "uuid", "key", "pk", "chunk_id")
_SCORE_KEYS = ("score", "similarity", "relevance", "relevance_score", "rank_score")
_DISTANCE_KEYS = ("distance",)
_CONTENT_KEYS = ("page_content", "content", "text", "document", "body", "snippet")
_DOCUMENT_LIST_KEYS = ("documents", "docs", "results", "hits", "matches", "items", "chunks", "data")
_VERDICT_BOOL_KEYS = ("accepted", "approved", "ok", "passed", "is_acceptable", "acceptable", "valid", "is_valid")
_VERDICT_KEYS = ("verdict", "decision", "status", "label", "result", "outcome")
_EXPLANATION_KEYS = ("explanation", "feedback", "reason", "rationale", "critique", "comment")
_ACCEPT_WORDS = {"accept", "accepted", "approve", "approved", "pass", "passed", "ok", "okay", "yes", "good", "lgtm", "valid", "true", "done"}
_REJECT_WORDS = {"reject", "rejected", "revise", "needs_revision", "fail", "failed", "no", "bad", "invalid", "false", "retry", "redo"}


def get_field(obj: Any, names: tuple[str, ...]) -> Any:
    """The first of ``names`` found as a mapping key or attribute of ``obj``; MISSING otherwise."""
    if obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return MISSING
    if type(obj) is dict or isinstance(obj, Mapping):  # the exact type first: the ABC check is the slow one
        for name in names:
            if name in obj:
                return obj[name]
        return MISSING
    keys = getattr(obj, "keys", None)
    if callable(keys) and hasattr(obj, "__getitem__") and not isinstance(obj, (list, tuple)):  # sqlite3.Row and friends
        try:
            available = set(keys())  # pyright: ignore[reportArgumentType] - keys() of a mapping-like result
            for name in names:
                if name in available:
                    return obj[name]
        except Exception:  # noqa: BLE001,S110
            pass
    for name in names:
        try:
            # With a default, an absent attribute costs no AttributeError object (most names tried are absent).
            value = getattr(obj, name, MISSING)
        except Exception:  # noqa: BLE001, S112 - a property that raises is not the field we look for
            continue
        if value is MISSING:
            continue
        if not callable(value) or isinstance(value, enum.Enum):
            return value
    return MISSING


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_label(value: Any) -> str | None:
    if isinstance(value, enum.Enum):
        value = value.value if isinstance(value.value, str) else value.name
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def extract_intent(result: Any, depth: int = 0) -> tuple[str | None, float | None]:
    """(label, confidence) from a classifier's result; (None, None) when the shape is unknown."""
    if result is MISSING or depth > 3:
        return None, None
    label = as_label(result)
    if label is not None:
        return label, None
    if isinstance(result, (tuple, list)):
        if len(result) == 2:
            first, second = result
            if as_label(first) is not None and not isinstance(second, str) and as_number(second) is not None:
                return as_label(first), as_number(second)
            if as_label(second) is not None and not isinstance(first, str) and as_number(first) is not None:
                return as_label(second), as_number(first)
        # a ranked list of candidates: take the most confident
        best: tuple[str | None, float | None] = (None, None)
        for candidate in result:
            candidate_label, confidence = extract_intent(candidate, depth + 1)
            if candidate_label is None:
                continue
            if best[0] is None or (confidence is not None and (best[1] is None or confidence > best[1])):
                best = (candidate_label, confidence)
        return best
    value = get_field(result, _INTENT_KEYS)
    if value is MISSING:
        return None, None
    confidence = as_number(get_field(result, _CONFIDENCE_KEYS))
    label = as_label(value)
    if label is None:  # nested: {"intent": {"name": ..., "confidence": ...}}
        label, nested_confidence = extract_intent(value, depth + 1)
        confidence = confidence if confidence is not None else nested_confidence
    return label, confidence


@dataclass
class Document:
    id: str | None = None
    score: float | None = None
    content: str | None = None


@dataclass
class Documents:
    documents: list[Document]
    score_kind: str = "similarity"  # or "distance" (lower is better)

    def top_score(self) -> float | None:
        scores = [d.score for d in self.documents if d.score is not None]
        if not scores:
            return None
        return min(scores) if self.score_kind == "distance" else max(scores)


def _one_document(item: Any) -> tuple[Document, bool]:
    """(document, scored_by_distance)."""
    if isinstance(item, str):
        return Document(content=item), False
    if isinstance(item, tuple) and len(item) == 2 and as_number(item[1]) is not None and not isinstance(item[0], (int, float)):
        document, distance = _one_document(item[0])  # LangChain (Document, score)
        document.score = as_number(item[1])
        return document, distance
    doc_id = get_field(item, _ID_KEYS)
    if doc_id is MISSING or doc_id is None:
        metadata = get_field(item, ("metadata",))
        doc_id = get_field(metadata, _ID_KEYS) if metadata is not MISSING else MISSING
    distance = False
    score = as_number(get_field(item, _SCORE_KEYS))
    if score is None:
        score = as_number(get_field(item, _DISTANCE_KEYS))
        distance = score is not None
    content = get_field(item, _CONTENT_KEYS)
    return Document(
        id=None if doc_id is MISSING or doc_id is None or isinstance(doc_id, bool) else str(doc_id),
        score=score,
        content=content if isinstance(content, str) else None,
    ), distance


def _first_query(value: Any) -> Any:
    """chromadb returns one list per query: use the first query's."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        return value[0]
    return value


def extract_documents(result: Any, depth: int = 0) -> Documents | None:
    """Documents (ids, scores, content) from a retriever's result; None when the shape is unknown."""
    if result is MISSING or result is None or depth > 3 or isinstance(result, (str, bytes, bool, int, float)):
        return None
    # chromadb QueryResult / GetResult: {"ids": [[...]], "distances": [[...]], "documents": [[...]]}
    ids = get_field(result, ("ids",))
    if ids is not MISSING and isinstance(ids, (list, tuple)):
        ids = list(_first_query(ids))
        distances = get_field(result, ("distances",))
        distances = list(_first_query(distances)) if isinstance(distances, (list, tuple)) else []
        contents = get_field(result, ("documents",))
        contents = list(_first_query(contents)) if isinstance(contents, (list, tuple)) else []
        documents = [
            Document(
                id=str(doc_id),
                score=as_number(distances[i]) if i < len(distances) else None,
                content=contents[i] if i < len(contents) and isinstance(contents[i], str) else None,
            )
            for i, doc_id in enumerate(ids)
        ]
        return Documents(documents, "distance" if distances else "similarity")
    if isinstance(result, (list, tuple)) or (
        not isinstance(result, Mapping) and hasattr(result, "__iter__") and hasattr(result, "__len__") and get_field(result, _DOCUMENT_LIST_KEYS) is MISSING
    ):
        documents: list[Document] = []
        distance_scored = False
        for item in list(result):
            document, distance = _one_document(item)
            documents.append(document)
            distance_scored = distance_scored or distance
        return Documents(documents, "distance" if distance_scored else "similarity")
    nested = get_field(result, _DOCUMENT_LIST_KEYS)
    if nested is not MISSING and not isinstance(nested, (str, bytes)):
        return extract_documents(nested, depth + 1)
    return None


@dataclass
class Verdict:
    accepted: bool | None = None
    score: float | None = None
    explanation: str | None = None


def _verdict_word(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    label = as_label(value)
    if label is None:
        return None
    word = label.lower().replace("-", "_").replace(" ", "_")
    if word in _ACCEPT_WORDS:
        return True
    if word in _REJECT_WORDS:
        return False
    return None


def extract_verdict(result: Any, depth: int = 0) -> Verdict:
    """A critique verdict from bool / str / tuple / dict / object results; empty Verdict when unknown."""
    if result is MISSING or depth > 3:
        return Verdict()
    word = _verdict_word(result)
    if word is not None:
        return Verdict(word)
    if isinstance(result, (tuple, list)) and result:
        verdict = Verdict(_verdict_word(result[0]))
        for extra in result[1:]:
            if verdict.score is None and as_number(extra) is not None:
                verdict.score = as_number(extra)
            elif verdict.explanation is None and isinstance(extra, str):
                verdict.explanation = extra
        return verdict if verdict.accepted is not None else Verdict()
    accepted = get_field(result, _VERDICT_BOOL_KEYS)
    verdict = Verdict(accepted if isinstance(accepted, bool) else None)
    if verdict.accepted is None:
        value = get_field(result, _VERDICT_KEYS)
        if value is not MISSING:
            verdict.accepted = _verdict_word(value)
            if verdict.accepted is None and not isinstance(value, (str, bool)):
                verdict.accepted = extract_verdict(value, depth + 1).accepted
    verdict.score = as_number(get_field(result, ("score", "rating", "confidence")))
    explanation = get_field(result, _EXPLANATION_KEYS)
    verdict.explanation = explanation if isinstance(explanation, str) else None
    return verdict


_QUERY_KEYS = ("query", "query_text", "question", "text", "q", "message", "prompt", "query_texts")
_TOP_K_KEYS = ("top_k", "k", "n_results", "limit", "max_results", "n")


def query_text(args: tuple, kwargs: dict) -> str | None:
    """The retrieval query: a query-like keyword argument, else the first str positional argument."""
    for key in _QUERY_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return "\n".join(value)
    for value in args:
        if isinstance(value, str):
            return value
    return None


def top_k(kwargs: dict) -> int | None:
    for key in _TOP_K_KEYS:
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
