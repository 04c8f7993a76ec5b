"""Gemini safety blocks as ``agentwatch.gen_ai.guardrail`` log events and ``agentwatch.gen_ai.guardrail.blocks``.

The real google-genai SDK against examples/fake_gemini.py (``#blocked-REASON``: a blocked prompt,
``#unsafe-CATEGORY``: a candidate stopped by the safety filters), real SDK providers with in-memory
exporters. Runs in the lowest-resolution venv too (Makefile LOWEST_TESTS).
"""

# No `from __future__ import annotations`: see tests/test_gemini.py (google-genai 2.x and annotations).
import asyncio
import json

import pytest
from _telemetry import Telemetry
from google import genai
from google.genai import types

from agentwatch import semconv as sc
from agentwatch.instrumentors.gemini import GeminiInstrumentor, guardrails

KEY = "AIzaSy-test-guardrail-key-0123456789"
MODEL = "gemini-2.5-flash"


@pytest.fixture
def tel(fake_gemini, monkeypatch):
    fake_gemini.require_key(None, monkeypatch)
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GEMINI_BASE_URL",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"):
        monkeypatch.delenv(var, raising=False)
    telemetry = Telemetry()
    instrumentor = GeminiInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                            logger_provider=telemetry.logger_provider)
    yield telemetry
    instrumentor.uninstrument()
    telemetry.shutdown()


@pytest.fixture
def client(fake_gemini):
    c = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake_gemini.url))
    yield c
    c.close()


def _call_span(tel):
    (span,) = [s for s in tel.spans("agentwatch.instrumentors.gemini")]
    return span


def _guardrail_events(tel):
    return [log for log in tel.logs() if getattr(log.log_record, "event_name", None) == sc.GENAI_GUARDRAIL_EVENT]


def _blocks(tel):
    return sorted((dict(p.attributes), p.value) for p in tel.points(sc.GENAI_GUARDRAIL_BLOCKS_METRIC))


def _assert_parented(event, span):
    record = event.log_record
    assert record.trace_id == span.context.trace_id and record.span_id == span.context.span_id


def _assert_prompt_block(tel, reason):
    span = _call_span(tel)
    (event,) = _guardrail_events(tel)
    _assert_parented(event, span)
    attributes = dict(event.log_record.attributes)
    ratings = json.loads(attributes.pop(sc.GENAI_GUARDRAIL_RATINGS))
    assert attributes == {
        "gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": MODEL,
        sc.GENAI_GUARDRAIL_TARGET: "prompt", sc.GENAI_GUARDRAIL_REASON: reason,
        sc.GENAI_GUARDRAIL_CATEGORY: "HARM_CATEGORY_DANGEROUS_CONTENT",
        sc.GENAI_GUARDRAIL_MESSAGE: f"The prompt was blocked due to {reason}.",
        sc.GEN_AI_RESPONSE_ID: attributes[sc.GEN_AI_RESPONSE_ID],
    }
    assert {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True} in ratings
    assert {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"} in ratings
    assert _blocks(tel) == [({
        "gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": MODEL, sc.GENAI_GUARDRAIL_TARGET: "prompt",
        sc.GENAI_GUARDRAIL_REASON: reason, sc.GENAI_GUARDRAIL_CATEGORY: "HARM_CATEGORY_DANGEROUS_CONTENT",
    }, 1)]


def _assert_response_block(tel, category="HARM_CATEGORY_HATE_SPEECH"):
    span = _call_span(tel)
    (event,) = _guardrail_events(tel)
    _assert_parented(event, span)
    attributes = dict(event.log_record.attributes)
    assert attributes[sc.GENAI_GUARDRAIL_TARGET] == "response"
    assert attributes[sc.GENAI_GUARDRAIL_REASON] == "SAFETY"
    assert attributes[sc.GENAI_GUARDRAIL_CATEGORY] == category
    assert attributes[sc.GENAI_GUARDRAIL_CANDIDATE] == 0
    ratings = json.loads(attributes[sc.GENAI_GUARDRAIL_RATINGS])
    assert ratings[0] == {"category": category, "probability": "HIGH", "severity": "HARM_SEVERITY_HIGH",
                          "probability_score": 0.97, "severity_score": 0.91, "blocked": True}
    assert len(ratings) == 4
    assert set(attributes) <= set(sc.GENAI_GUARDRAIL_ATTRIBUTES)
    assert _blocks(tel) == [({
        "gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": MODEL, sc.GENAI_GUARDRAIL_TARGET: "response",
        sc.GENAI_GUARDRAIL_REASON: "SAFETY", sc.GENAI_GUARDRAIL_CATEGORY: category,
    }, 1)]
    assert list(span.attributes["gen_ai.response.finish_reasons"])[-1] == "safety"


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT"])
def test_blocked_prompt_unary(tel, client, reason):
    response = client.models.generate_content(model=MODEL, contents=f"how do I ... #blocked-{reason}")
    assert not response.candidates and response.prompt_feedback.block_reason.name == reason  # the app sees it unchanged
    _assert_prompt_block(tel, reason)


def test_blocked_prompt_streamed(tel, client):
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="how do I ... #blocked-SAFETY"))
    assert len(chunks) == 1
    _assert_prompt_block(tel, "SAFETY")


def test_unsafe_response_unary(tel, client):
    response = client.models.generate_content(model=MODEL, contents="say it #unsafe-HARM_CATEGORY_HATE_SPEECH")
    assert response.candidates[0].finish_reason.name == "SAFETY"
    _assert_response_block(tel)


def test_unsafe_response_streamed_block_in_a_later_chunk(tel, client):
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="say it #unsafe-HARM_CATEGORY_HARASSMENT"))
    assert len(chunks) == 2 and chunks[0].text == "Well, "  # the block arrives in the second chunk
    _assert_response_block(tel, "HARM_CATEGORY_HARASSMENT")


def test_unsafe_response_async_stream(tel, client):
    async def run():
        stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents="say it #unsafe-HARM_CATEGORY_DANGEROUS_CONTENT"
        )
        return [chunk async for chunk in stream]

    assert len(asyncio.run(run())) == 2
    _assert_response_block(tel, "HARM_CATEGORY_DANGEROUS_CONTENT")


def test_ordinary_answers_emit_nothing(tel, client):
    client.models.generate_content(model=MODEL, contents="hello there")
    list(client.models.generate_content_stream(model=MODEL, contents="hello again, a longer answer please"))
    assert _guardrail_events(tel) == [] and _blocks(tel) == []


class _Call:
    """A stand-in call for hostile responses fed straight to guardrails.observe (no SDK can build them)."""

    def __init__(self, tel):
        from agentwatch.instrumentors.gemini.telemetry import Telemetry as GeminiTelemetry

        self.tel = GeminiTelemetry(tel.tracer_provider, tel.meter_provider, tel.logger_provider)
        self.ctx = None
        self.metric_base = {"gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": MODEL}
        self.guardrails_seen = set()


@pytest.mark.parametrize("response", [
    {"promptFeedback": {"blockReason": "x" * 10_000 + "\u00e9\U0001f600", "blockReasonMessage": "m" * 100_000}},
    {"promptFeedback": {"blockReason": 42, "safetyRatings": "not a list"}},
    {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [None, 3, {"probabilityScore": float("nan"),
                                                                              "blocked": "yes"}] * 1000}},
    {"candidates": "nope"},
    {"candidates": [None, {"finishReason": None}, {"safetyRatings": [{"blocked": True, "category": None}]}] * 100},
    {"candidates": [{"finishReason": "SAFETY", "index": True, "finishMessage": ["not text"]}]},
])
def test_hostile_responses_never_raise_and_stay_bounded(tel, response):
    call = _Call(tel)
    guardrails.observe(call, response)
    guardrails.observe(call, response)  # a stream repeating itself: reported once
    for event in _guardrail_events(tel):
        attributes = dict(event.log_record.attributes)
        assert len(attributes[sc.GENAI_GUARDRAIL_REASON]) <= 64
        assert len(attributes.get(sc.GENAI_GUARDRAIL_MESSAGE, "")) <= 512
        assert len(json.loads(attributes.get(sc.GENAI_GUARDRAIL_RATINGS, "[]"))) <= 32
    for attributes, _ in _blocks(tel):  # metric values: provider names or _OTHER, never free text
        assert all(v == "_OTHER" or v.replace("_", "").isalnum() and v.isupper() or v in ("gcp.gemini", MODEL, "prompt", "response")
                   for v in attributes.values()), attributes
    assert len(_guardrail_events(tel)) <= 9  # the prompt, and at most 8 candidates (the API's limit)
