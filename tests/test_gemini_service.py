"""The demo service, unchanged, under ``opentelemetry-instrument``: its google-genai calls
become GenAI spans and metrics, the request's server span carries the summed cost, and
the API key is in no byte the real OTLP exporter sent to a local receiver."""

from __future__ import annotations

import pytest

from _service import FAST_EXPORT, clean_env, start_service
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

KEY = "AIzaSy-service-SECRET-0123456789"


def test_demo_service_gemini_spans_rollup_and_no_key(tmp_path, fake_gemini, monkeypatch):
    url = fake_gemini.require_key(KEY, monkeypatch)  # shaped like a real key, so a leak would be recognisable
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(
            **rx.env(),
            **FAST_EXPORT,
            GEMINI_BASE_URL=url,
            GEMINI_API_KEY=KEY,
        )
        service = start_service(tmp_path, env)
        try:
            for message in ("How do I reset my password?", "I was charged twice"):
                status, body = service.request("POST", "/chat", {"message": message, "session_id": "s"})
                assert status == 200, body
            status, body = service.request("POST", "/chat", {"message": "broken #fail-429", "session_id": "s"})
            # the demo's SDK retries a 429 (3 attempts), then answers 429 itself
            assert status == 429 and body["error"]["upstream_status"] == 429
        finally:
            service.terminate()
        stderr = service.stderr()
        spans = rx.spans()
        metrics = rx.metrics()
        raw = b"".join(r.SerializeToString() for signal in ("traces", "metrics", "logs") for r in rx.raw(signal))

    assert "Traceback" not in stderr, stderr
    by_id = {s["span_id"]: s for s in spans}
    chats = [s for s in spans if s["name"] == "POST /chat"]
    gemini = [s for s in spans if s["scope"] == "agentwatch.instrumentors.gemini"]
    assert len(chats) == 3 and len(gemini) == 3
    for span in gemini:
        assert span["name"] == "generate_content gemini-2.5-flash" and span["kind"] == "CLIENT"
        ancestor = by_id[span["parent_span_id"]]
        while ancestor["kind"] != "SERVER":
            ancestor = by_id[ancestor["parent_span_id"]]
        assert ancestor["name"] == "POST /chat"
        http = [s for s in spans if s["parent_span_id"] == span["span_id"] and s["name"] == "POST"]
        # the httpx2 CLIENT span of each attempt is under the one GenAI span
        assert len(http) == (3 if span["status"] == "ERROR" else 1)

    ok = [s for s in gemini if s["status"] != "ERROR"]
    failed = [s for s in gemini if s["status"] == "ERROR"]
    assert len(ok) == 2 and failed[0]["attributes"]["error.type"] == "429"
    assert failed[0]["attributes"]["agentwatch.retry.attempts"] == 3
    assert [e["attributes"]["agentwatch.retry.outcome"] for e in failed[0]["events"]
            if e["name"] == "agentwatch.retry.failed_attempt"] == ["retried", "retried", "exhausted"]
    for span in ok:
        chat = next(c for c in chats if c["trace_id"] == span["trace_id"])
        a, c = span["attributes"], chat["attributes"]
        assert a["gen_ai.provider.name"] == "gcp.gemini" and a["gen_ai.usage.input_tokens"] > 0
        assert c["agentwatch.request.gen_ai.calls"] == 1
        assert c["agentwatch.request.gen_ai.input_tokens"] == a["gen_ai.usage.input_tokens"]
        assert c["agentwatch.request.gen_ai.output_tokens"] == a["gen_ai.usage.output_tokens"]
        assert c["agentwatch.request.gen_ai.cost"] == pytest.approx(a["agentwatch.gen_ai.usage.cost"])

    names = {m["name"] for m in metrics}
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage", "agentwatch.gen_ai.client.cost"} <= names
    tokens = [m for m in metrics if m["name"] == "gen_ai.client.token.usage"][-1]
    assert tokens["data_points"][0]["explicit_bounds"][:3] == [1, 4, 16]

    assert KEY.encode() not in raw
    assert KEY not in stderr
