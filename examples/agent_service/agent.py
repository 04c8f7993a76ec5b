"""The agent pipeline behind ``POST /chat``: classify -> retrieve -> plan (draft -> critique
-> revise) -> generate.

Each step is a plain function or method of its own module (``intents.classify``,
``knowledge.search``, ``planner.Planner.plan`` with ``planner.Critic.review``,
``GeminiClient.generate`` over google-genai), which is what instrumentors hook: named in
``AGENTWATCH_*_TARGETS``, they are traced without a line of observability code here.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import OrderedDict, deque
from dataclasses import dataclass

import intents
import knowledge
from gemini_client import GeminiClient
from planner import Planner

log = logging.getLogger("agent")

SYSTEM_PROMPT = (
    "You are Orbitly's support assistant. Answer in two or three sentences using only the "
    "articles given as context, follow the answer plan, and cite the article ids in square brackets."
)


@dataclass
class Answer:
    answer: str
    intent: str
    confidence: float
    sources: list[str]
    session_id: str


class SessionStore:
    """Last few turns per session, in memory, bounded in sessions and turns."""

    def __init__(self, max_sessions: int = 1000, max_turns: int = 2):
        self._sessions: OrderedDict[str, deque] = OrderedDict()
        self._max_sessions = max_sessions
        self._max_turns = max_turns

    def history(self, session_id: str) -> list[dict]:
        turns = self._sessions.get(session_id) or ()
        contents: list[dict] = []
        for user_text, model_text in turns:
            contents.append({"role": "user", "parts": [{"text": user_text}]})
            contents.append({"role": "model", "parts": [{"text": model_text}]})
        return contents

    def remember(self, session_id: str, user_text: str, model_text: str) -> None:
        turns = self._sessions.pop(session_id, None) or deque(maxlen=self._max_turns)
        turns.append((user_text, model_text))
        self._sessions[session_id] = turns
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)


class Agent:
    def __init__(
        self,
        conn: sqlite3.Connection,
        llm: GeminiClient,
        sessions: SessionStore | None = None,
        planner: Planner | None = None,
    ):
        self.conn = conn
        self.llm = llm
        self.sessions = sessions or SessionStore()
        self.planner = planner or Planner()

    async def answer(self, message: str, session_id: str) -> Answer:
        intent = intents.classify(message)
        documents = knowledge.search(self.conn, message, category=_category_for(intent.name), limit=3)
        plan = self.planner.plan(message, documents)
        context = "\n".join(f"[{d.doc_id}] {d.title}: {d.body}" for d in documents)
        prompt = f"Context:\n{context}\n\nAnswer plan:\n{plan.outline}\n\nQuestion: {message}"
        contents = self.sessions.history(session_id) + [{"role": "user", "parts": [{"text": prompt}]}]

        completion = await self.llm.generate(contents, system=SYSTEM_PROMPT)

        self.sessions.remember(session_id, message, completion.text)
        log.info(
            "chat answered intent=%s confidence=%.2f docs=%d plan_iterations=%d tokens_in=%d tokens_out=%d",
            intent.name, intent.confidence, len(documents), plan.iterations, completion.input_tokens,
            completion.output_tokens,
        )
        return Answer(
            answer=completion.text,
            intent=intent.name,
            confidence=intent.confidence,
            sources=[d.doc_id for d in documents],
            session_id=session_id,
        )


def _category_for(intent: str) -> str:
    return intent if intent in ("billing", "technical", "account") else "general"
