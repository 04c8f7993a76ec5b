"""Result extraction reads the common return shapes and never raises on unknown ones."""

from __future__ import annotations

import enum
from collections import namedtuple
from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from agentwatch.instrumentors._agents import extract as x
from agentwatch.instrumentors._agents.targets import parse_targets


@dataclass
class IntentDC:
    label: str
    confidence: float


class IntentModel(BaseModel):
    intent: str
    probability: float


class Color(enum.Enum):
    BILLING = "billing"


class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


Pair = namedtuple("Pair", "name score")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("billing", ("billing", None)),
        (("billing", 0.9), ("billing", 0.9)),
        ((0.9, "billing"), ("billing", 0.9)),
        ({"intent": "billing", "confidence": 0.8}, ("billing", 0.8)),
        ({"label": "refund", "score": 0.3}, ("refund", 0.3)),
        (IntentDC("greeting", 0.7), ("greeting", 0.7)),
        (IntentModel(intent="cancel", probability=0.6), ("cancel", 0.6)),
        (Obj(category="shipping", confidence=1.0), ("shipping", 1.0)),
        (Pair("other_intent", 0.2), ("other_intent", 0.2)),
        (Color.BILLING, ("billing", None)),
        ({"intent": {"name": "nested", "confidence": 0.55}}, ("nested", 0.55)),
        ([{"label": "a", "score": 0.1}, {"label": "b", "score": 0.8}], ("b", 0.8)),
    ],
)
def test_intent_shapes(result, expected):
    assert x.extract_intent(result) == expected


@pytest.mark.parametrize("result", [None, 42, 3.5, True, object(), [], {"unrelated": 1}, b"x", {"intent": 5}, x.MISSING])
def test_intent_unknown_shapes_give_nothing(result):
    assert x.extract_intent(result) == (None, None)


@dataclass
class DocDC:
    doc_id: str
    score: float
    content: str


class LCDocument:  # LangChain's Document shape
    def __init__(self, page_content, metadata):
        self.page_content, self.metadata = page_content, metadata


def _docs(result):
    found = x.extract_documents(result)
    return None if found is None else ([(d.id, d.score) for d in found.documents], found.score_kind, found.top_score())


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([{"id": "a", "score": 0.9}, {"id": "b", "score": 0.4}], ([("a", 0.9), ("b", 0.4)], "similarity", 0.9)),
        ([DocDC("d1", 0.5, "x")], ([("d1", 0.5)], "similarity", 0.5)),
        ([LCDocument("text", {"id": "lc1"})], ([("lc1", None)], "similarity", None)),
        ([(LCDocument("t", {"id": "lc2"}), 0.33)], ([("lc2", 0.33)], "similarity", 0.33)),
        (
            {"ids": [["c1", "c2"]], "distances": [[0.1, 0.7]], "documents": [["x", "y"]]},
            ([("c1", 0.1), ("c2", 0.7)], "distance", 0.1),
        ),
        ({"results": [{"doc_id": 7, "similarity": 0.2}]}, ([("7", 0.2)], "similarity", 0.2)),
        (Obj(hits=[Obj(id="h", distance=0.3)]), ([("h", 0.3)], "distance", 0.3)),
        (["just text", "more"], ([(None, None), (None, None)], "similarity", None)),
        ([], ([], "similarity", None)),
        ((), ([], "similarity", None)),
    ],
)
def test_document_shapes(result, expected):
    assert _docs(result) == expected


@pytest.mark.parametrize("result", [None, "text", 3, True, {"x": 1}, object(), x.MISSING])
def test_document_unknown_shapes_give_none(result):
    assert x.extract_documents(result) is None


def test_sqlite_rows_are_documents():
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT 'r1' AS id, 0.5 AS score").fetchall()
    assert _docs(rows) == ([("r1", 0.5)], "similarity", 0.5)


@pytest.mark.parametrize(
    ("result", "accepted", "score"),
    [
        (True, True, None),
        (False, False, None),
        ("accepted", True, None),
        ("Needs revision", False, None),
        ("LGTM", True, None),
        ((False, 0.3, "too long"), False, 0.3),
        ({"accepted": True, "score": 0.9}, True, 0.9),
        ({"verdict": "reject", "feedback": "no"}, False, None),
        (Obj(approved=False), False, None),
        ({"decision": {"ok": True}}, True, None),
        ({"score": 0.8}, None, 0.8),
    ],
)
def test_verdict_shapes(result, accepted, score):
    verdict = x.extract_verdict(result)
    assert (verdict.accepted, verdict.score) == (accepted, score)


@pytest.mark.parametrize("result", [None, 5, "maybe", object(), [], {"x": 1}, x.MISSING])
def test_verdict_unknown_shapes(result):
    assert x.extract_verdict(result) == x.Verdict()


def test_targets_parse_and_bad_items_warn(capsys):
    targets = parse_targets("AGENTWATCH_RAG_TARGETS", "kb:search=docs, pkg.mod:Store.query ,bad target,:x, a:b")
    assert [(t.module, t.path, t.name, t.label) for t in targets] == [
        ("kb", "search", "docs", "docs"),
        ("pkg.mod", "Store.query", None, "mod.Store.query"),
        ("a", "b", None, "a.b"),
    ]
    err = capsys.readouterr().err
    assert "AGENTWATCH_RAG_TARGETS: 'bad target' is not module:function" in err
    assert "':x'" in err
