"""A real FastAPI app under ``opentelemetry-instrument``, its pipeline steps named only by env vars.

The subprocess serves the app with uvicorn on a real socket, sends requests
to itself with httpx, and exits; the ``otlp_json_file`` exporter writes what
was recorded. One run proves: the trace shape (server span -> intent ->
retrieval with its sqlite3 spans -> plan with one critique child per
iteration and verdict events), async and sync targets, a method target, an
async-generator target, a raising target (the handler sees the same
exception; the span records it), one warning per missing target, every agent
metric with its unit and buckets, folding into ``other``, and -- in
``test_agent_catalogue`` -- that all of it matches ``agentwatch.semconv``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _service import BIN, clean_env, free_port, json_attrs, json_points, read_json_telemetry

PIPELINE = textwrap.dedent(
    '''
    import sqlite3
    from dataclasses import dataclass

    from pydantic import BaseModel

    DB = sqlite3.connect(":memory:", check_same_thread=False)
    DB.execute("CREATE VIRTUAL TABLE kb USING fts5(id, body)")
    DB.executemany("INSERT INTO kb VALUES (?, ?)", [("d1", "refund policy"), ("d2", "refund window"), ("d3", "shipping")])

    class ClassifierDown(RuntimeError):
        pass

    @dataclass
    class Intent:
        label: str
        confidence: float

    class Verdict(BaseModel):
        accepted: bool
        score: float

    def classify(text: str) -> Intent:
        if text == "explode":
            raise ClassifierDown("model unavailable")
        word = text.split()[0]
        return Intent(word, 0.95 if word == "refund" else 0.35)

    async def search(query: str, top_k: int = 3):
        rows = DB.execute("SELECT id, -bm25(kb) FROM kb WHERE kb MATCH ? ORDER BY bm25(kb) LIMIT ?", (query, top_k)).fetchall()
        return [{"id": doc_id, "score": min(score, 1.0)} for doc_id, score in rows]

    async def stream_search(query: str):
        for doc_id, in DB.execute("SELECT id FROM kb WHERE kb MATCH ?", (query,)).fetchall():
            yield {"id": doc_id, "distance": 0.25}

    class Critic:
        def review(self, draft: str) -> Verdict:
            return Verdict(accepted=draft.count("+") >= 2, score=0.3 * draft.count("+"))

    class Planner:
        def __init__(self):
            self.critic = Critic()

        async def plan(self, text: str, docs) -> str:
            draft = text
            for _ in range(5):
                draft += "+"
                if self.critic.review(draft).accepted:
                    return draft
            return draft
    '''
)

APP = textwrap.dedent(
    '''
    import asyncio, sys
    import httpx, uvicorn
    from fastapi import FastAPI
    from pipeline import ClassifierDown, Planner, classify, search, stream_search  # bound after the import hook ran

    app = FastAPI()
    planner = Planner()

    @app.post("/chat")
    async def chat(body: dict):
        text = body["message"]
        try:
            intent = classify(text)
        except ClassifierDown as error:  # the very exception the classifier raised
            return {"error": type(error).__name__, "message": str(error)}
        docs = await search(text.split()[0], top_k=2)
        streamed = [d async for d in stream_search(text.split()[0])]
        answer = await planner.plan(text, docs)
        return {"intent": intent.label, "docs": [d["id"] for d in docs], "streamed": len(streamed), "answer": answer}

    async def main(port):
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for message in ["refund please", "shipping status", "explode", "alpha", "beta", "gamma", "delta"]:
                response = await client.post("/chat", json={"message": message})
                print("RESPONSE", response.status_code, response.text, flush=True)
        server.should_exit = True
        await task

    asyncio.run(main(int(sys.argv[1])))
    '''
)


_RUNS: list[tuple] = []  # the one run of the session


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(completed process, spans, agent metrics)`` of the app's one run.

    test_agent_catalogue imports this fixture; a module-scoped fixture would run the
    subprocess again there, so the result is kept for the session.
    """
    if not _RUNS:
        _RUNS.append(_run_app(tmp_path_factory.mktemp("agent_app")))
    return _RUNS[0]


def _run_app(tmp: Path) -> tuple:
    (tmp / "pipeline.py").write_text(PIPELINE)
    (tmp / "app.py").write_text(APP)
    out = tmp / "telemetry"
    env = clean_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="otlp_json_file",
        OTEL_LOGS_EXPORTER="none",
        AGENTWATCH_FILE_DIR=str(out),
        OTEL_SERVICE_NAME="agent-test",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics,gemini",
        AGENTWATCH_INTENT_TARGETS="pipeline:classify=keyword,pipeline:missing_classifier",
        AGENTWATCH_RAG_TARGETS="pipeline:search=kb,pipeline:stream_search=kb_stream,ghost_module:find",
        AGENTWATCH_PLANNER_TARGETS="pipeline:Planner.plan=support",
        AGENTWATCH_CRITIC_TARGETS="pipeline:Critic.review=reviewer",
        AGENTWATCH_INTENT_MAX_DISTINCT="3",
        # the verdicts as span events too (by default they are log events only; tests/test_evaluation_events.py)
        AGENTWATCH_EVALUATION_SPAN_EVENTS="true",
        PYTHONPATH=str(tmp),
    )
    proc = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "app.py", str(free_port())],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    spans, metrics = read_json_telemetry(out, metric_scope="agentwatch.instrumentors")
    return proc, spans, metrics


@pytest.mark.slow
def test_app_answers_unchanged(run):
    proc, _, _ = run
    responses = [json.loads(line.split(" ", 2)[2]) for line in proc.stdout.splitlines() if line.startswith("RESPONSE 200")]
    assert len(responses) == 7
    assert responses[0] == {"intent": "refund", "docs": ["d1", "d2"], "streamed": 2, "answer": "refund please++"}
    assert responses[2] == {"error": "ClassifierDown", "message": "model unavailable"}
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_missing_targets_warn_once_each(run):
    proc, _, _ = run
    err = proc.stderr
    assert err.count("'pipeline:missing_classifier' does not exist") == 1, err
    assert err.count("module 'ghost_module' of target 'ghost_module:find' was not found") == 1, err


@pytest.mark.slow
def test_trace_shape_of_one_chat_request(run):
    _, spans, _ = run
    by_id = {s["spanId"]: s for s in spans}
    server = next(s for s in spans if s["name"] == "POST /chat" and s["kind"] == 2)  # SERVER
    trace = [s for s in spans if s["traceId"] == server["traceId"]]

    def children(parent, prefix=""):
        return sorted(
            (s for s in trace if s.get("parentSpanId") == parent["spanId"] and s["name"].startswith(prefix)),
            key=lambda s: int(s["startTimeUnixNano"]),
        )

    agent = [s["name"] for s in children(server) if s["scope"] == "agentwatch.instrumentors"]
    assert agent == ["classify_intent keyword", "retrieval kb", "retrieval kb_stream", "plan support"]
    intent, retrieval, stream, plan = (next(s for s in children(server) if s["name"] == n) for n in agent)
    assert intent["attrs"] == {
        "agentwatch.intent.classifier": "keyword", "agentwatch.intent.name": "refund",
        "agentwatch.intent.confidence": 0.95, "agentwatch.intent.low_confidence": False,
    }
    assert retrieval["attrs"]["gen_ai.operation.name"] == "retrieval"
    assert int(retrieval["attrs"]["gen_ai.request.top_k"]) == 2
    assert [d["id"] for d in json.loads(retrieval["attrs"]["gen_ai.retrieval.documents"])] == ["d1", "d2"]
    assert [s["name"] for s in children(retrieval)] == ["SELECT"]  # sqlite3 span nested under the retrieval
    assert stream["attrs"]["agentwatch.retrieval.score_kind"] == "distance"
    assert [s["name"] for s in children(stream)] == ["SELECT"]
    critiques = children(plan)
    assert [c["name"] for c in critiques] == ["critique reviewer", "critique reviewer"]
    assert [int(c["attrs"]["agentwatch.critique.iteration"]) for c in critiques] == [1, 2]
    events = [c["events"][0] for c in critiques]
    assert [e["name"] for e in events] == ["gen_ai.evaluation.result"] * 2
    assert [json_attrs(e["attributes"])["gen_ai.evaluation.score.label"] for e in events] == ["rejected", "accepted"]
    assert [round(json_attrs(e["attributes"])["gen_ai.evaluation.score.value"], 2) for e in events] == [0.3, 0.6]
    assert plan["attrs"]["gen_ai.operation.name"] == "plan" and plan["attrs"]["gen_ai.agent.name"] == "support"
    assert int(plan["attrs"]["agentwatch.plan.iterations"]) == 2 and plan["attrs"]["agentwatch.plan.accepted"] is True
    for span in (intent, retrieval, stream, plan, *critiques):
        assert span["kind"] == 1, span["name"]  # INTERNAL
        assert span["traceId"] == server["traceId"] and span["spanId"] in by_id


@pytest.mark.slow
def test_raising_target_is_recorded(run):
    _, spans, _ = run
    failed = [s for s in spans if s["name"] == "classify_intent keyword" and s.get("status", {}).get("code") == 2]
    assert len(failed) == 1
    assert failed[0]["attrs"]["error.type"] == "ClassifierDown"
    exception = json_attrs(failed[0]["events"][0]["attributes"])
    assert exception["exception.type"].endswith("ClassifierDown") and exception["exception.message"] == "model unavailable"


@pytest.mark.slow
def test_agent_metrics_and_buckets(run):
    _, _, metrics = run
    classifications = {a["agentwatch.intent.name"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.intent.classifications"])}
    # 6 classified (one raised); bound 3: refund, shipping, alpha kept, beta/gamma/delta fold into other
    assert classifications == {"refund": 1, "shipping": 1, "alpha": 1, "other": 3}
    confidence = metrics["agentwatch.intent.confidence"]["histogram"]["dataPoints"]
    assert confidence[0]["explicitBounds"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    low = {a["agentwatch.intent.name"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.intent.low_confidence"])}
    assert low == {"shipping": 1, "alpha": 1, "other": 3}
    (attrs, documents), *_ = [x for x in json_points(metrics["agentwatch.retrieval.documents"]) if x[0]["gen_ai.data_source.id"] == "kb"]
    assert documents["explicitBounds"] == [0, 1, 2, 3, 5, 10, 20, 50, 100]
    empty = {a["gen_ai.data_source.id"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.retrieval.empty"])}
    assert empty == {"kb": 4, "kb_stream": 4}  # alpha, beta, gamma, delta match nothing
    assert metrics["agentwatch.retrieval.duration"]["unit"] == "s"
    assert metrics["agentwatch.retrieval.top_score"]["histogram"]["dataPoints"][0]["explicitBounds"][0] == 0.1
    iterations = json_points(metrics["agentwatch.plan.iterations"])
    assert [(a, int(p["count"]), p["explicitBounds"][:3]) for a, p in iterations] == [({"gen_ai.agent.name": "support"}, 6, [1, 2, 3])]
    verdicts = {a["agentwatch.critique.verdict"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.critique.verdicts"])}
    assert verdicts == {"accepted": 6, "rejected": 6}
    first = {a["agentwatch.plan.accepted"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.plan.first_try_acceptance"])}
    assert first == {False: 6}
    assert int(json_points(metrics["agentwatch.plan.duration"])[0][1]["count"]) == 6
