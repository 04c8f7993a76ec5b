"""The demo agent service, unchanged, under ``opentelemetry-instrument`` with its pipeline
named only by the ``AGENTWATCH_*_TARGETS`` variables (the way ``make demo`` runs it).

One run of the real service (uvicorn, sqlite3 FTS5, google-genai against the local fake
Gemini), exported by the real ``otlp_json_file`` exporters, proves the trace of one
``/chat``: server span -> ``classify_intent keyword`` -> ``retrieval kb`` (its sqlite3
spans underneath) -> ``plan support`` (one ``critique reviewer`` child per iteration, its verdict
a ``gen_ai.evaluation.result`` log event parented to it) -> the Gemini call; the ``#crash`` request's plan span failing and the JSON
500 carrying the request id of the server span; and the agent metrics of the run.
"""

from __future__ import annotations

import json

import pytest

from _service import clean_env, json_attrs, json_points, read_json_telemetry, start_service

pytestmark = pytest.mark.slow

TARGETS = {
    "AGENTWATCH_INTENT_TARGETS": "intents:classify=keyword",
    "AGENTWATCH_RAG_TARGETS": "knowledge:search=kb",
    "AGENTWATCH_PLANNER_TARGETS": "planner:Planner.plan=support",
    "AGENTWATCH_CRITIC_TARGETS": "planner:Critic.review=reviewer",
}
# (message, verdicts of its critiques, in order); see test_demo_app.PLANS for why.
CHATS = [
    ("What keyboard shortcuts are there?", ["accepted"]),
    ("Goodbye!", ["rejected", "accepted"]),
    ("The web app does not load in my browser", ["rejected", "accepted"]),
    ("Can I start a board from a template for sprint planning?", ["rejected", "rejected", "accepted"]),
]
CRASH = "Why is the timeline view empty? #crash"
CRASH_ID = "pipeline-crash-42"


@pytest.fixture(scope="module")
def run(tmp_path_factory, fake_gemini):
    tmp = tmp_path_factory.mktemp("demo_pipeline")
    out = tmp / "telemetry"
    env = clean_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="otlp_json_file",
        OTEL_LOGS_EXPORTER="otlp_json_file",  # the critiques' gen_ai.evaluation.result events
        OTEL_METRIC_EXPORT_INTERVAL="60000",  # the final flush on SIGTERM writes the totals
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics",
        OTEL_SERVICE_NAME="agent-service",
        AGENTWATCH_FILE_DIR=str(out),
        **fake_gemini.env(),
        **TARGETS,
    )
    service = start_service(tmp, env)
    try:
        answers = []
        for i, (message, _) in enumerate(CHATS):
            status, body = service.request("POST", "/chat", {"message": message, "session_id": f"s-{i}"})
            assert status == 200, body
            answers.append(body)
        crash = _post_with_request_id(service.url, CRASH, CRASH_ID)
    finally:
        code = service.terminate()
    stderr = service.stderr()
    assert code in (0, -15, 143), stderr
    spans, metrics = read_json_telemetry(out)
    by_id = {span["spanId"]: span for span in spans}
    for line in (out / "logs.jsonl").read_text().splitlines():  # each event onto the span it is parented to
        for resource_logs in json.loads(line)["resourceLogs"]:
            for scope_logs in resource_logs["scopeLogs"]:
                for record in scope_logs["logRecords"]:
                    if record.get("eventName") and record.get("spanId") in by_id:
                        by_id[record["spanId"]].setdefault("log_events", []).append(record)
    return answers, crash, stderr, spans, metrics


def _post_with_request_id(base: str, message: str, request_id: str):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{base}/chat",
        data=json.dumps({"message": message, "session_id": "s-crash"}).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _children(trace, parent):
    return sorted(
        (s for s in trace if s.get("parentSpanId") == parent["spanId"]), key=lambda s: int(s["startTimeUnixNano"])
    )


def _chat_traces(spans):
    servers = sorted(
        (s for s in spans if s["name"] == "POST /chat" and s["kind"] == 2), key=lambda s: int(s["startTimeUnixNano"])
    )
    return [(server, [s for s in spans if s["traceId"] == server["traceId"]]) for server in servers]


def test_targets_wired_by_env_only(run):
    _, _, stderr, spans, _ = run
    assert "agentwatch WARNING" not in stderr and "does not exist" not in stderr, stderr
    assert {s["name"] for s in spans} >= {"classify_intent keyword", "retrieval kb", "plan support", "critique reviewer"}


def test_trace_tree_of_each_chat(run):
    answers, _, _, spans, _ = run
    traces = _chat_traces(spans)
    assert len(traces) == len(CHATS) + 1
    for (message, verdicts), answer, (server, trace) in zip(CHATS, answers, traces):
        steps = _children(trace, server)
        assert [s["name"] for s in steps] == [
            "classify_intent keyword", "retrieval kb", "plan support", "generate_content gemini-2.5-flash",
        ], message
        intent, retrieval, plan, gemini = steps
        assert [s["kind"] for s in steps] == [1, 1, 1, 3]  # INTERNAL x3, the model call CLIENT

        assert intent["attrs"]["agentwatch.intent.name"] == answer["intent"]
        assert intent["attrs"]["agentwatch.intent.confidence"] == pytest.approx(answer["confidence"])

        assert retrieval["attrs"]["gen_ai.operation.name"] == "retrieval"
        assert retrieval["attrs"]["gen_ai.data_source.id"] == "kb"
        assert int(retrieval["attrs"]["gen_ai.request.top_k"]) == 3
        assert int(retrieval["attrs"]["agentwatch.retrieval.document_count"]) == 3
        documents = json.loads(retrieval["attrs"]["gen_ai.retrieval.documents"])
        assert [d["id"] for d in documents] == answer["sources"]
        assert all(set(d) <= {"id", "score"} for d in documents)  # no content without the opt-in
        assert "gen_ai.retrieval.query.text" not in retrieval["attrs"]
        sql = _children(trace, retrieval)
        assert sql and all(s["kind"] == 3 and s["attrs"].get("db.system.name") == "sqlite" for s in sql), sql

        assert plan["attrs"]["gen_ai.operation.name"] == "plan" and plan["attrs"]["gen_ai.agent.name"] == "support"
        assert int(plan["attrs"]["agentwatch.plan.iterations"]) == len(verdicts)
        assert plan["attrs"]["agentwatch.plan.accepted"] is True
        critiques = _children(trace, plan)
        assert [c["name"] for c in critiques] == ["critique reviewer"] * len(verdicts)
        assert [c["attrs"]["agentwatch.critique.verdict"] for c in critiques] == verdicts, message
        assert [int(c["attrs"]["agentwatch.critique.iteration"]) for c in critiques] == list(range(1, len(verdicts) + 1))
        for critique, verdict in zip(critiques, verdicts):
            assert not critique.get("events")  # the verdict is a log event (AGENTWATCH_EVALUATION_SPAN_EVENTS unset)
            (event,) = critique["log_events"]
            assert event["eventName"] == "gen_ai.evaluation.result" and event["traceId"] == critique["traceId"]
            assert json_attrs(event["attributes"])["gen_ai.evaluation.score.label"] == verdict
            assert "gen_ai.evaluation.explanation" not in json_attrs(event["attributes"])

        assert gemini["scope"] == "agentwatch.instrumentors.gemini"
        assert [s["name"] for s in _children(trace, gemini)] == ["POST"]  # its HTTP round trip
        # the roll-up counts the one model call, not the critiques
        assert int(server["attrs"]["agentwatch.request.gen_ai.calls"]) == 1
        assert int(server["attrs"]["agentwatch.request.gen_ai.input_tokens"]) == int(gemini["attrs"]["gen_ai.usage.input_tokens"])


def test_unhandled_exception_in_the_plan(run):
    _, (status, headers, body), _, spans, _ = run
    assert status == 500
    assert set(body) == {"error", "message", "request_id"} and body["request_id"] == CRASH_ID
    assert {k.lower(): v for k, v in headers.items()}["x-request-id"] == CRASH_ID
    assert "#crash" not in body["message"]  # generic message by default

    server, trace = _chat_traces(spans)[-1]
    assert server["attrs"]["agentwatch.request.id"] == CRASH_ID
    assert int(server["attrs"]["http.response.status_code"]) == 500 and server["status"]["code"] == 2
    steps = _children(trace, server)
    assert [s["name"] for s in steps] == ["classify_intent keyword", "retrieval kb", "plan support"]  # no model call
    plan = steps[-1]
    assert plan["status"]["code"] == 2 and plan["attrs"]["error.type"] == "PlanningError"
    exception = json_attrs(plan["events"][0]["attributes"])
    assert exception["exception.type"].endswith("PlanningError") and "#crash" in exception["exception.message"]
    assert _children(trace, plan) == []  # it raised before the first critique


def test_agent_metrics(run):
    answers, _, _, _, metrics = run
    intents: dict[str, int] = {}
    for answer in answers:
        intents[answer["intent"]] = intents.get(answer["intent"], 0) + 1
    intents["technical"] = intents.get("technical", 0) + 1  # the #crash message is classified before the crash
    counted = {a["agentwatch.intent.name"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.intent.classifications"])}
    assert counted == intents
    assert all(a["agentwatch.intent.classifier"] == "keyword" for a, _ in json_points(metrics["agentwatch.intent.confidence"]))
    low = {a["agentwatch.intent.name"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.intent.low_confidence"])}
    assert low == {"other": 2}  # the keyword classifier's 0.3 for "no keyword" (shortcuts, template)
    assert sum(answer["confidence"] < 0.5 for answer in answers) == 2  # the default threshold

    (attrs, documents), = json_points(metrics["agentwatch.retrieval.documents"])
    assert attrs == {"gen_ai.data_source.id": "kb"} and int(documents["count"]) == len(CHATS) + 1
    assert documents["sum"] == 3 * (len(CHATS) + 1)
    assert "agentwatch.retrieval.empty" not in metrics  # the knowledge base always tops up to three
    (_, top), = json_points(metrics["agentwatch.retrieval.top_score"])
    assert int(top["count"]) == 4  # "Goodbye!" matches no article: no score

    iterations = json_points(metrics["agentwatch.plan.iterations"])
    assert len(iterations) == 1 and iterations[0][0] == {"gen_ai.agent.name": "support"}
    histogram = iterations[0][1]
    assert [int(c) for c in histogram["bucketCounts"][:4]] == [1, 2, 1, 0]  # 1, 2, 2 and 3 iterations
    verdicts = {a["agentwatch.critique.verdict"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.critique.verdicts"])}
    assert verdicts == {"accepted": 4, "rejected": 4}
    first = {a["agentwatch.plan.accepted"]: int(p["asInt"]) for a, p in json_points(metrics["agentwatch.plan.first_try_acceptance"])}
    assert first == {True: 1, False: 3}
    durations = {a.get("error.type"): int(p["count"]) for a, p in json_points(metrics["agentwatch.plan.duration"])}
    assert durations == {None: 4, "PlanningError": 1}

    calls = sum(int(p["count"]) for _, p in json_points(metrics["gen_ai.client.operation.duration"]))
    assert calls == len(CHATS)
