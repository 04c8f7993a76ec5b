"""The answer planner of the demo agent: draft -> critique -> revise, between retrieval and
the model call.

:meth:`Planner.plan` turns the question and the retrieved articles into an answer outline
(the points the model should make, each citing the article it comes from), which the
agent puts into the Gemini prompt. Each draft goes to :meth:`Critic.review`, which rejects
a draft that cites none of the retrieved articles (or cites one that was not retrieved) or
that is longer than the outline budget; the planner then revises the draft (adds the best
article's key sentence, or drops its least relevant point) and asks again, at most
``max_iterations`` times. Everything is a pure function of the message and the articles,
so the same question always takes the same number of iterations: many plans pass at
once, some need two or three.

Fault injection for demos, like ``#fail-503`` for the fake Gemini: a message containing
``#crash`` makes :meth:`Planner.plan` raise :class:`PlanningError`, which nothing in the
app handles -- an unhandled exception in the route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

CRASH_MARKER = "#crash"
GENERIC_POINT = "Acknowledge the message briefly and offer help with Orbitly"

_TERM = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOPWORDS = frozenset(
    "a an the and or but if of to in on at for with by from is are was were be been do does did i me my "
    "we our you your it its this that how what why when where who can could would should will not no "
    "there here have has had so as about please hi hello thanks get there any all".split()
)


class PlanningError(RuntimeError):
    """The planner could not build an outline."""


@dataclass(frozen=True)
class Point:
    text: str
    source: str | None  # the article id the point comes from; None for a point of our own
    relevance: int = 0  # question terms the point shares


@dataclass(frozen=True)
class Draft:
    points: tuple[Point, ...]
    revision: int = 0

    def render(self) -> str:
        return "\n".join(f"- {p.text}" + (f" [{p.source}]" if p.source else "") for p in self.points)

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(p.source for p in self.points if p.source))


@dataclass(frozen=True)
class Critique:
    accepted: bool
    score: float  # 1.0 = no problem; each problem costs a share
    feedback: str  # what to fix, "ok" when accepted
    problems: tuple[str, ...] = ()


@dataclass
class Plan:
    outline: str
    sources: list[str]
    iterations: int
    accepted: bool
    critiques: list[Critique] = field(default_factory=list)


def _terms(text: str) -> set[str]:
    terms = set()
    for term in _TERM.findall(text.lower()):
        if term in _STOPWORDS or len(term) < 2:
            continue
        terms.add(term[:-1] if len(term) > 3 and term.endswith("s") else term)  # crude plural folding
    return terms


class Critic:
    """Reviews an outline: it must cite a retrieved article and fit the budget."""

    def __init__(self, max_chars: int = 300):
        self.max_chars = max_chars

    def review(self, draft: Draft, documents: Sequence) -> Critique:
        retrieved = {d.doc_id for d in documents}
        cited = set(draft.sources)
        problems: list[str] = []
        if not cited & retrieved:
            problems.append("missing_citation")
        elif cited - retrieved:
            problems.append("unknown_citation")
        length = len(draft.render())
        if length > self.max_chars:
            problems.append("too_long")
        feedback = "; ".join(
            {
                "missing_citation": "cite at least one of the retrieved articles",
                "unknown_citation": f"cite only retrieved articles, not {sorted(cited - retrieved)}",
                "too_long": f"shorten the outline ({length} > {self.max_chars} characters)",
            }[problem]
            for problem in problems
        )
        return Critique(not problems, round(1.0 - 0.5 * len(problems), 2), feedback or "ok", tuple(problems))


class Planner:
    """Builds the answer outline with a critique loop (at most ``max_iterations`` critiques)."""

    def __init__(self, critic: Critic | None = None, *, max_iterations: int = 3, max_points: int = 4):
        self.critic = critic or Critic()
        self.max_iterations = max_iterations
        self.max_points = max_points

    def plan(self, message: str, documents: Sequence) -> Plan:
        if CRASH_MARKER in message:
            raise PlanningError(f"no outline template for a message flagged {CRASH_MARKER}")
        draft = self.draft(message, documents)
        critiques: list[Critique] = []
        while True:
            critique = self.critic.review(draft, documents)
            critiques.append(critique)
            if critique.accepted or len(critiques) >= self.max_iterations:
                break
            draft = self.revise(draft, critique, documents)
        return Plan(draft.render(), draft.sources, len(critiques), critique.accepted, critiques)

    def draft(self, message: str, documents: Sequence) -> Draft:
        """Every sentence of the articles that shares a term with the question, most relevant first."""
        question = _terms(message)
        candidates: list[tuple[int, int, int, Point]] = []
        for rank, document in enumerate(documents):
            for position, sentence in enumerate(_SENTENCE.split(document.body.strip())):
                overlap = len(question & _terms(sentence))
                if overlap:
                    point = Point(sentence.rstrip(". "), document.doc_id, overlap)
                    candidates.append((-overlap, rank, position, point))
        points = tuple(point for *_, point in sorted(candidates, key=lambda c: c[:3])[: self.max_points])
        return Draft(points or (Point(GENERIC_POINT, None),))

    def revise(self, draft: Draft, critique: Critique, documents: Sequence) -> Draft:
        points = list(draft.points)
        if "missing_citation" in critique.problems or "unknown_citation" in critique.problems:
            retrieved = {d.doc_id for d in documents}
            points = [p for p in points if p.source is None or p.source in retrieved]
            if documents:
                best = documents[0]
                first = _SENTENCE.split(best.body.strip())[0].rstrip(". ")
                points.insert(0, Point(first, best.doc_id))
        elif "too_long" in critique.problems and len(points) > 1:
            points.pop()  # the least relevant point
        return Draft(tuple(points), draft.revision + 1)
