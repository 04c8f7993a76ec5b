"""``gen_ai.evaluation.result`` as a log event: critic verdicts and ``agentwatch.record_evaluation``.

In-process: real SDK providers exporting to memory (the planner instrumentor given the logger
provider). End to end: a script under ``opentelemetry-instrument`` exporting with the distro's
``otlp_json_file`` exporters (the scrubber on the log path), then ``agentwatch report`` on those files.
Runs in the lowest-resolution venv too (Makefile LOWEST_TESTS).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
from _service import BIN, clean_env, json_attrs

import agentwatch
from agentwatch import semconv as sc
from agentwatch.instrumentors._agents import evaluation
from agentwatch.instrumentors.planner import AgentwatchPlannerInstrumentor

CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


@pytest.fixture
def tel(telemetry, monkeypatch):
    for var in (CAPTURE, "AGENTWATCH_EVALUATION_SPAN_EVENTS", "AGENTWATCH_GENAI_CONTENT_MAX_CHARS"):
        monkeypatch.delenv(var, raising=False)
    instrumentor = AgentwatchPlannerInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                            logger_provider=telemetry.logger_provider)
    yield telemetry
    instrumentor.uninstrument()


def _events(tel):
    return [log.log_record for log in tel.logs() if getattr(log.log_record, "event_name", None) == sc.EVALUATION_EVENT]


def _critique(tel, verdict, name="reviewer"):
    with agentwatch.planning("support"), agentwatch.critique(name) as step:
        step.record(verdict)
    return next(s for s in tel.spans() if s.name == f"critique {name}")


def test_verdict_is_a_log_event_parented_to_the_critique_span(tel):
    span = _critique(tel, {"accepted": False, "score": 0.4, "feedback": "too short"})
    (event,) = _events(tel)
    assert (event.trace_id, event.span_id) == (span.context.trace_id, span.context.span_id)
    assert dict(event.attributes) == {
        "gen_ai.evaluation.name": "reviewer", "gen_ai.evaluation.score.value": 0.4,
        "gen_ai.evaluation.score.label": "rejected",
    }  # no explanation without the content opt-in
    assert span.events == ()  # the span event only with AGENTWATCH_EVALUATION_SPAN_EVENTS
    assert span.attributes["agentwatch.critique.verdict"] == "rejected"
    (readable,) = [log for log in tel.logs() if log.log_record is event]
    assert readable.instrumentation_scope.name == "agentwatch.instrumentors"


def test_span_event_kept_behind_the_setting(tel, monkeypatch):
    monkeypatch.setenv("AGENTWATCH_EVALUATION_SPAN_EVENTS", "true")
    span = _critique(tel, (True, 0.9))
    (event,) = _events(tel)
    (span_event,) = span.events
    assert span_event.name == "gen_ai.evaluation.result"
    assert dict(span_event.attributes) == dict(event.attributes) == {
        "gen_ai.evaluation.name": "reviewer", "gen_ai.evaluation.score.value": 0.9,
        "gen_ai.evaluation.score.label": "accepted",
    }


@pytest.mark.parametrize("mode", ["SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"])
def test_explanation_with_the_opt_in_scrubbed_and_clipped(tel, monkeypatch, mode):
    monkeypatch.setenv(CAPTURE, mode)
    monkeypatch.setenv("AGENTWATCH_GENAI_CONTENT_MAX_CHARS", "80")
    feedback = "Mail jane.doe@example.com, card 4111 1111 1111 1111. " + "é漢😀" * 100_000
    _critique(tel, {"accepted": True, "feedback": feedback})
    explanation = _events(tel)[0].attributes["gen_ai.evaluation.explanation"]
    assert "jane.doe@example.com" not in explanation and "4111 1111 1111 1111" not in explanation
    assert "[REDACTED:email]" in explanation and "[REDACTED:credit_card]" in explanation
    assert explanation.endswith("chars]") and len(explanation) < 200 and "é漢😀" in explanation


def test_record_evaluation_for_any_evaluator(tel):
    tracer = tel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("chat gemini-2.5-flash") as model_call:
        agentwatch.record_evaluation("relevance", score=0.82, label="pass", response_id="resp-1")
    with tracer.start_as_current_span("other"):
        agentwatch.record_evaluation("toxicity", score="0.25", error_type="TimeoutError", span=model_call)
    agentwatch.record_evaluation("no span", label="fail")
    first, second, third = _events(tel)
    for event in (first, second):
        assert (event.trace_id, event.span_id) == (model_call.get_span_context().trace_id,
                                                   model_call.get_span_context().span_id)
    assert dict(first.attributes) == {
        "gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.82,
        "gen_ai.evaluation.score.label": "pass", "gen_ai.response.id": "resp-1",
    }
    assert dict(second.attributes) == {
        "gen_ai.evaluation.name": "toxicity", "gen_ai.evaluation.score.value": 0.25, "error.type": "TimeoutError",
    }
    assert not third.trace_id and dict(third.attributes) == {
        "gen_ai.evaluation.name": "no span", "gen_ai.evaluation.score.label": "fail",
    }


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __float__ = __str__  # pyright: ignore[reportAssignmentType] - hostile on purpose


@pytest.mark.parametrize("score, expected", [
    (float("nan"), None), (float("inf"), None), (-math.inf, None), ("NaN", None), ("1e999", None),
    ("0.75", 0.75), (" 3 ", 3.0), ("high", None), (True, None), (10**400, None), (b"0.5", 0.5),
    (_Unprintable(), None), ([0.5], None), (7, 7.0),
])
def test_hostile_scores_never_break_the_app(tel, score, expected):
    agentwatch.record_evaluation("judge", score=score, label="x")
    (event,) = _events(tel)
    assert event.attributes.get("gen_ai.evaluation.score.value") == expected


def test_hostile_texts_are_clipped_and_kept(tel, monkeypatch):
    monkeypatch.setenv(CAPTURE, "EVENT_ONLY")
    agentwatch.record_evaluation("ä" * 10_000, label="ok\x00漢" * 5_000, response_id=_Unprintable(),  # type: ignore[arg-type]
                                 explanation=_Unprintable(), span="not a span")  # type: ignore[arg-type]
    agentwatch.record_evaluation(_Unprintable())  # type: ignore[arg-type]
    first, second = _events(tel)
    assert first.attributes["gen_ai.evaluation.name"] == "ä" * 256
    assert len(first.attributes["gen_ai.evaluation.score.label"]) == 256
    assert set(first.attributes) == {"gen_ai.evaluation.name", "gen_ai.evaluation.score.label"}
    assert dict(second.attributes) == {"gen_ai.evaluation.name": "unknown"}


def test_a_failing_log_pipeline_never_reaches_the_app(tel, monkeypatch, lenient):
    class Broken:
        def emit(self, *args, **kwargs):
            raise RuntimeError("exporter down")

    monkeypatch.setattr(evaluation, "_get_logger", lambda: Broken())
    span = _critique(tel, True)  # the critic's result and the verdict attribute survive
    assert span.attributes["agentwatch.critique.verdict"] == "accepted"
    agentwatch.record_evaluation("judge", score=1)  # no exception


def test_critic_with_a_hostile_verdict(tel, monkeypatch):
    monkeypatch.setenv(CAPTURE, "SPAN_ONLY")
    _critique(tel, {"accepted": True, "score": float("nan"), "feedback": "x" * 1_000_000})
    (event,) = _events(tel)
    assert "gen_ai.evaluation.score.value" not in event.attributes
    assert len(event.attributes["gen_ai.evaluation.explanation"]) < 20_000


SCRIPT = textwrap.dedent(
    """
    import agentwatch
    from opentelemetry import trace

    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("POST /chat", kind=trace.SpanKind.SERVER):
        with agentwatch.planning("support"):
            for accepted, score in ((False, 0.25), (True, 0.75)):
                with agentwatch.critique("reviewer") as step:
                    step.record({"accepted": accepted, "score": score,
                                 "feedback": "ask jane.doe@example.com, card 4111 1111 1111 1111"})
        with tracer.start_as_current_span("judge me"):
            agentwatch.record_evaluation("relevance <ops@example.com>", score=0.5, label="pass")
    """
)


def test_end_to_end_files_scrubbed_and_read_by_the_report(tmp_path):
    (tmp_path / "app.py").write_text(SCRIPT)
    out = tmp_path / "telemetry"
    env = clean_env(
        OTEL_TRACES_EXPORTER="otlp_json_file", OTEL_LOGS_EXPORTER="otlp_json_file", OTEL_METRICS_EXPORTER="none",
        AGENTWATCH_FILE_DIR=str(out), OTEL_SERVICE_NAME="eval-test", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_AND_EVENT", OTEL_BLRP_SCHEDULE_DELAY="50",
    )
    proc = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "app.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    spans = {}
    for line in (out / "traces.jsonl").read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    spans[span["spanId"]] = span
    events = []
    for line in (out / "logs.jsonl").read_text().splitlines():
        for rl in json.loads(line)["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                events += [r for r in sl["logRecords"] if r.get("eventName") == "gen_ai.evaluation.result"]
    assert len(events) == 3, events
    critiques = [spans[e["spanId"]] for e in events[:2]]
    assert [c["name"] for c in critiques] == ["critique reviewer"] * 2
    assert all(e["traceId"] == spans[e["spanId"]]["traceId"] for e in events)
    assert all(not c.get("events") for c in critiques)  # log events only, by default
    attrs = [json_attrs(e["attributes"]) for e in events]
    assert [a["gen_ai.evaluation.score.label"] for a in attrs] == ["rejected", "accepted", "pass"]
    assert spans[events[2]["spanId"]]["name"] == "judge me"
    exported = (out / "logs.jsonl").read_text()
    for secret in ("jane.doe@example.com", "4111 1111 1111 1111", "ops@example.com"):
        assert secret not in exported
    assert "[REDACTED:email]" in attrs[0]["gen_ai.evaluation.explanation"]
    assert attrs[2]["gen_ai.evaluation.name"] == "relevance <[REDACTED:email]>"  # scrubbed by the export path

    from agentwatch.report import render

    report = render(str(out), traces=5)
    rejected = next(line for line in report.splitlines() if "agentwatch.critique.verdict=rejected" in line)
    accepted = next(line for line in report.splitlines() if "agentwatch.critique.verdict=accepted" in line)
    assert "gen_ai.evaluation.score.value=0.25" in rejected and "gen_ai.evaluation.score.value=0.75" in accepted
    # the logs section names a body-less event by its name and attributes
    assert "gen_ai.evaluation.result gen_ai.evaluation.name=reviewer" in report, report


def test_report_reads_hostile_evaluation_lines_without_raising_or_counting_twice(tmp_path):
    from agentwatch.report import render

    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    span = {"traceId": trace_id, "spanId": span_id, "name": "critique judge", "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "critique"}}]}
    (tmp_path / "traces.jsonl").write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")

    def record(**extra):
        return {"eventName": "gen_ai.evaluation.result", "traceId": trace_id, "spanId": span_id,
                "timeUnixNano": "1700000000050000000", **extra}

    lines = [
        "not json gen_ai.evaluation.result",
        json.dumps({"resourceLogs": "gen_ai.evaluation.result"}),
        json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            record(traceId=12, spanId=None), record(attributes="gen_ai.evaluation.result"), record(spanId="zz" * 40),
            record(attributes=[{"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": "0.125"}}]),
            record(attributes=[{"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": 0.9}}]),
        ]}]}]}),
    ]
    (tmp_path / "logs.jsonl").write_text("\n".join(lines) + "\n")
    report = render(str(tmp_path))
    row = next(line for line in report.splitlines() if "critique judge" in line)
    assert "gen_ai.evaluation.score.value=0.125" in row  # the first score of the span, as with span events
    assert "1 unreadable line" in report  # the bad line counted once, by the logs reader
