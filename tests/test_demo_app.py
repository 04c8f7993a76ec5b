"""The demo agent service (examples/agent_service) and the fake Gemini, uninstrumented.

Real parts: FastAPI's TestClient runs the app's lifespan, sqlite3 FTS5, and the app's
shared google-genai client talks over loopback to examples/fake_gemini.py in a thread.
The planner (draft -> critique -> revise) is tested on its own too: how many iterations a
question takes is part of what the demo shows, so it is pinned here.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SERVICE = EXAMPLES / "agent_service"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_app_module():
    # app.py imports its sibling modules by plain name, as it does when run from its folder.
    before = set(sys.modules)
    sys.path.insert(0, str(SERVICE))
    try:
        yield _load("agentwatch_demo_app", SERVICE / "app.py")
    finally:
        sys.path.remove(str(SERVICE))
        for name in set(sys.modules) - before:  # generic sibling names (agent, knowledge...)
            path = getattr(sys.modules[name], "__file__", None)
            if path and Path(path).parent == SERVICE:
                del sys.modules[name]


@pytest.fixture(scope="module")
def service(demo_app_module):
    """The app's sibling modules, as app.py imported them (``service.planner``, ``service.knowledge``...)."""

    class Modules:
        def __getattr__(self, name):
            module = sys.modules[name]
            assert Path(module.__file__).parent == SERVICE
            return module

    return Modules()


@pytest.fixture()
def kb(service):
    conn = service.knowledge.connect(":memory:")
    yield conn
    conn.close()


@pytest.fixture()
def client(fake_gemini, demo_app_module, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_BASE_URL", fake_gemini.url)
    monkeypatch.setenv("GEMINI_API_KEY", fake_gemini.key)
    monkeypatch.setenv("AGENT_DB_PATH", str(tmp_path / "kb.sqlite3"))
    with TestClient(demo_app_module.create_app()) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "message, intent",
    [
        ("I was charged twice, can I get a refund?", "billing"),
        ("The desktop app crashes with an error", "technical"),
        ("How do I reset my password?", "account"),
        ("hello, how are you?", "smalltalk"),
        ("tell me a poem about the sea", "other"),
    ],
)
def test_chat_answers_with_intent_and_three_sources(client, message, intent):
    response = client.post("/chat", json={"message": message, "session_id": "sess-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"answer", "intent", "confidence", "sources", "session_id"}
    assert body["intent"] == intent
    assert 0.0 < body["confidence"] <= 1.0
    assert len(body["sources"]) == 3 and all(re.fullmatch(r"kb-\d{3}", s) for s in body["sources"])
    assert body["session_id"] == "sess-1"
    assert body["answer"]


def test_chat_retrieves_relevant_documents(client):
    body = client.post("/chat", json={"message": "reset my password", "session_id": "s"}).json()
    assert body["sources"][0] == "kb-017"  # "Resetting your password"


def test_documents_found_and_missing(client):
    ok = client.get("/documents/kb-001")
    assert ok.status_code == 200 and ok.json()["title"] == "Plans and prices"
    missing = client.get("/documents/kb-404")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]


def test_index(client):
    assert client.get("/").json()["documents"] == 30


def test_model_failure_becomes_502(client):
    response = client.post("/chat", json={"message": "sync is broken #fail-503", "session_id": "s"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "model_error" and error["upstream_status"] == 503


def test_invalid_chat_body_is_422(client):
    assert client.post("/chat", json={"message": "", "session_id": "s"}).status_code == 422


@pytest.fixture
def any_key_url(fake_gemini, monkeypatch) -> str:
    """The session's fake Gemini, taking any key (these tests of the fake itself send "k"): its URL."""
    return fake_gemini.require_key(None, monkeypatch)


def test_fake_gemini_requires_api_key(any_key_url):
    url = f"{any_key_url}/v1beta/models/gemini-2.5-flash:generateContent"
    payload = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    response = httpx.post(url, json=payload)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED" and error["message"]

    answered = httpx.post(url, json=payload, headers={"x-goog-api-key": "k"})
    assert answered.status_code == 200
    body = answered.json()
    assert body["candidates"][0]["finishReason"] == "STOP"
    usage = body["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert body["modelVersion"] == "gemini-2.5-flash"
    # deterministic
    assert httpx.post(url, json=payload, headers={"x-goog-api-key": "k"}).json() == body


def test_fake_gemini_streams_sse(any_key_url):
    url = f"{any_key_url}/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    payload = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    response = httpx.post(url, json=payload, headers={"x-goog-api-key": "k"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\r\n\r\n") if line.startswith("data: ")]
    assert len(events) >= 2 and '"finishReason":"STOP"' in events[-1]


def test_demo_app_imports_no_observability_code():
    for source in SERVICE.glob("*.py"):
        text = source.read_text()
        assert not re.search(r"^\s*(import|from)\s+(agentwatch|opentelemetry)\b", text, re.M), source


def test_search_scores_full_text_matches_only(service, kb):
    documents = service.knowledge.search(kb, "How do I reset my password?", category="account", limit=3)
    assert [d.doc_id for d in documents][:2] == ["kb-017", "kb-023"]
    matched = [d.score for d in documents if d.score is not None]
    assert matched and all(0.0 < score < 1.0 for score in matched) and matched == sorted(matched, reverse=True)
    # nothing matches: three articles of the intent's category, unscored
    filler = service.knowledge.search(kb, "Goodbye!", category="general", limit=3)
    assert [(d.doc_id, d.score) for d in filler] == [("kb-025", None), ("kb-026", None), ("kb-027", None)]


# (message, category, critique problems per iteration): deterministic, so the demo shows
# plans accepted at once, after a missing citation, after one or two length cuts.
PLANS = [
    ("What keyboard shortcuts are there?", "general", [()]),
    ("Goodbye!", "general", [("missing_citation",), ()]),
    ("The web app does not load in my browser", "technical", [("too_long",), ()]),
    ("Can I start a board from a template for sprint planning?", "general", [("too_long",), ("too_long",), ()]),
]


@pytest.mark.parametrize("message, category, problems", PLANS)
def test_planner_critique_loop(service, kb, message, category, problems):
    documents = service.knowledge.search(kb, message, category=category, limit=3)
    plan = service.planner.Planner().plan(message, documents)
    assert [c.problems for c in plan.critiques] == problems
    assert plan.iterations == len(problems) and plan.accepted
    assert [c.accepted for c in plan.critiques] == [False] * (len(problems) - 1) + [True]
    assert plan.sources and set(plan.sources) <= {d.doc_id for d in documents}
    assert len(plan.outline) <= service.planner.Critic().max_chars
    assert all(f"[{source}]" in plan.outline for source in plan.sources)


def test_critic_rules(service, kb):
    planner = service.planner
    documents = service.knowledge.search(kb, "refund", category="billing", limit=3)
    cited = planner.Draft((planner.Point("Annual plans can be refunded within 30 days", documents[0].doc_id),))
    assert planner.Critic().review(cited, documents).accepted
    uncited = planner.Draft((planner.Point("Say hello", None),))
    verdict = planner.Critic().review(uncited, documents)
    assert not verdict.accepted and verdict.problems == ("missing_citation",) and verdict.score == 0.5
    foreign = planner.Draft((planner.Point("Something", "kb-999"), cited.points[0]))
    assert planner.Critic().review(foreign, documents).problems == ("unknown_citation",)
    assert planner.Critic(max_chars=20).review(cited, documents).problems == ("too_long",)
    # a plan that cannot be fixed within the budget stops at max_iterations, not accepted
    plan = planner.Planner(planner.Critic(max_chars=10), max_iterations=3).plan("refund policy", documents)
    assert plan.iterations == 3 and not plan.accepted


def test_planner_stops_with_an_empty_knowledge_base(service):
    plan = service.planner.Planner().plan("anything at all", [])
    assert plan.iterations == 3 and not plan.accepted and plan.sources == []


def test_crash_marker_is_an_unhandled_exception(client, service):
    # Uninstrumented, nothing turns it into JSON: the exception leaves the app (TestClient re-raises it).
    with pytest.raises(service.planner.PlanningError, match="#crash"):
        client.post("/chat", json={"message": "Why is the timeline empty? #crash", "session_id": "s"})
