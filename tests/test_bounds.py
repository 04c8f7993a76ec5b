"""Bounded everything (issue 8, item 4), end to end: the demo service under ``opentelemetry-instrument``
with the agent targets and GenAI content capture on, pushed past each bound, exporting to a local receiver.

- ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` / ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` hold for every span, ours
  (agent, Gemini) included, and for span events;
- ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS`` cuts the captured content (retrieval query, Gemini messages);
- requests to random unknown paths add no ``http.route`` value and no per-path value to any metric
  attribute: metric series stay as many as the app's routes.
(The span/log queue bounds are pushed in tests/test_faults.py and tests/test_queue_drops.py.)
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from _fake_gemini import FakeGemini  # noqa: E402
from _service import FAST_EXPORT, clean_env, start_service  # noqa: E402
from otlp_receiver import OTLPReceiver  # noqa: E402
from run_demo import AGENT_TARGETS  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.slow]

LONG = "I was charged twice on my invoice and " + "really " * 400 + "want a refund"  # ~2,850 chars
ROUTES = {"/", "/chat", "/documents/{doc_id}"}


def _serve(tmp_path: Path, gemini: FakeGemini, rx: OTLPReceiver, **extra: str) -> str:
    env = clean_env(
        **rx.env(), **AGENT_TARGETS, **gemini.env(), **FAST_EXPORT, OTEL_SERVICE_NAME="agent-service",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY", **extra,
    )
    service = start_service(tmp_path, env)
    try:
        for i in range(3):
            assert service.request("POST", "/chat", {"message": LONG, "session_id": f"s-{i}"})[0] == 200
        for _ in range(25):  # scanners probing random paths
            assert service.request("GET", f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}")[0] == 404
            assert service.request("GET", f"/documents/{uuid.uuid4().hex}")[0] == 404
        assert rx.wait_for(lambda r: any(s["name"].startswith("execute_tool") or s["kind"] == "CLIENT" for s in r.spans()), timeout=10)
        assert rx.wait_for(lambda r: r.metrics("http.server.request.duration"), timeout=10)
    finally:
        service.terminate()
    return service.stderr()


def _strings(attributes: dict) -> list[str]:
    out = []
    for value in attributes.values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, (list, tuple)):
            out.extend(v for v in value if isinstance(v, str))
    return out


def test_attribute_length_and_count_limits_hold_for_every_span(tmp_path, fake_gemini):
    with OTLPReceiver(protocol="http") as rx:
        stderr = _serve(tmp_path, fake_gemini, rx, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="64",
                        OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="6", OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT="4")
        spans = rx.spans()
    assert "Traceback" not in stderr, stderr
    scopes = {s["scope"] for s in spans}
    assert {"agentwatch.instrumentors"} <= scopes and any("gemini" in scope or "genai" in scope for scope in scopes), scopes
    longest = max(len(v) for s in spans for v in _strings(s["attributes"]))
    assert longest == 64, longest  # values were cut at the limit (the long message made longer ones)
    assert max(len(s["attributes"]) for s in spans) <= 6
    assert max(len(e["attributes"]) for s in spans for e in s["events"]) <= 4 if any(s["events"] for s in spans) else True
    for span in spans:
        for event in span["events"]:
            assert all(len(v) <= 64 for v in _strings(event["attributes"])), event


def test_captured_content_is_cut_and_unknown_paths_fold_into_no_series(tmp_path, fake_gemini):
    with OTLPReceiver(protocol="http") as rx:
        stderr = _serve(tmp_path, fake_gemini, rx, AGENTWATCH_GENAI_CONTENT_MAX_CHARS="50")
        spans = rx.spans()
        metrics = rx.metrics()
    assert "Traceback" not in stderr, stderr
    # Captured content: cut to 50 characters plus the truncation note, wherever it is recorded.
    queries = [s["attributes"]["gen_ai.retrieval.query.text"] for s in spans if "gen_ai.retrieval.query.text" in s["attributes"]]
    assert queries and all(q.startswith(LONG[:50]) and len(q) <= 50 + 40 and "truncated" in q for q in queries), queries
    inputs = [s["attributes"]["gen_ai.input.messages"] for s in spans if "gen_ai.input.messages" in s["attributes"]]
    assert inputs, sorted({k for s in spans for k in s["attributes"]})
    for text in inputs:
        assert "really " * 20 not in text, text[:300]  # the 2,850-char message did not go in whole
    # Cardinality: the 50 random paths are no http.route value (traces or metrics) and no metric attribute.
    routes = {s["attributes"]["http.route"] for s in spans if "http.route" in s["attributes"]}
    assert routes <= ROUTES, routes
    values = set()
    for metric in metrics:
        for point in metric["data_points"]:
            values.update(str(v) for v in point["attributes"].values())
    assert values, metrics[:1]
    assert not [v for v in values if len(v) >= 32 and all(c in "0123456789abcdef/" for c in v)], values
    assert {v for v in values if v.startswith("/")} <= ROUTES | {"/documents/{doc_id}"}, values
