"""Length limits cut scrubbed text, never raw text: attribute value limits and the content limit.

The SDK cuts an attribute value to ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` when it is set, before any
exporter runs: a scrubber at the exporter then sees 15 card digits or half an e-mail address and
lets them through. agentwatch moves the SDK's cut ``limits.MARGIN`` characters out and cuts at the
real limit after scrubbing (and never inside a mark); the GenAI/agent content limit scrubs only
what it can keep.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _service import clean_env
from agentwatch.distro import configurator
from agentwatch.distro.scrub import AttributeLimits, Scrubber
from agentwatch.distro.scrub.limits import MARGIN, cut, scrub_and_cut
from agentwatch.distro.settings import load_settings
from agentwatch.instrumentors import _genai_common as g
from otlp_receiver import OTLPReceiver

# LoggerProvider(log_record_limits=...) is opentelemetry-sdk 1.45's: on 1.44 (the lowest resolution) the SDK reads
# the length limits from the environment itself and cuts before the scrubber (said by a start-up warning;
# tests/test_lowest_compat.py covers that path).
needs_log_limits = pytest.mark.skipif(
    not configurator._LOGGER_PROVIDER_TAKES_LIMITS,
    reason="opentelemetry-sdk < 1.45 (the lowest resolution) takes no log_record_limits: it cuts log attributes itself",
)

CARD = "4111111111111111"
LIMIT = 64
STRADDLING = {  # a secret across the limit, and what of it must not be exported
    "card": ("x" * (LIMIT - 8) + f" {CARD} end", "411111"),
    "grouped card": ("x" * (LIMIT - 10) + " 4111 1111 1111 1111 end", "4111 11"),
    "email": ("x" * (LIMIT - 6) + " jane.doe@example.com", "jane"),
    "google key": ("x" * (LIMIT - 20) + " AIzaSyD3k9QmZr2Xw7VbN4pLs8TfHj1Ye6Uc0Ga end", "AIzaSyD3k9"),
}


def _spans(span_limits: SpanLimits, scrubber: Scrubber, text: str) -> dict:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=span_limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("s", attributes={"q": text, "l": [text]}).end()
    (span,) = scrubber.scrub_spans(exporter.get_finished_spans())
    return dict(span.attributes)


@pytest.mark.parametrize("case", sorted(STRADDLING))
def test_the_sdk_cut_alone_leaks_what_agentwatch_cuts_after_scrubbing(case):
    """The bug, kept as a test: the SDK's own cut first, the scrubber after, leaks part of the secret;
    agentwatch's limits (the configurator's, the scrubber's) do not."""
    text, part = STRADDLING[case]
    raw = _spans(SpanLimits(max_attribute_length=LIMIT), Scrubber(), text)
    assert part in raw["q"]  # what happens without agentwatch's limits
    settings = load_settings({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": str(LIMIT)})
    scrubber = Scrubber(limits=AttributeLimits(LIMIT, LIMIT, LIMIT))
    out = _spans(configurator._span_limits(settings), scrubber, text)
    for value in (out["q"], out["l"][0]):
        assert part not in value and len(value) <= LIMIT and value.startswith("x" * 20), value


@needs_log_limits
def test_configurator_limits_follow_the_variables():
    settings = load_settings({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "50",
                              "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT": "70"})
    span, log = configurator._span_limits(settings), configurator._log_limits(settings)
    assert (span.max_attribute_length, span.max_span_attribute_length) == (100 + MARGIN, 50 + MARGIN)
    assert (log.max_attribute_length, log.max_log_record_attribute_length) == (100 + MARGIN, 70 + MARGIN)
    assert (settings.scrub.attribute_length, settings.scrub.span_attribute_length, settings.scrub.log_attribute_length) \
        == (100, 50, 70)
    off = load_settings({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100", "AGENTWATCH_SCRUB": "false"})
    assert configurator._span_limits(off).max_span_attribute_length == 100  # no scrubber: the SDK cuts as usual
    unset = load_settings({})
    assert configurator._span_limits(unset).max_span_attribute_length is None
    # Log record attributes are bounded by AGENTWATCH_LOG_BODY_MAX_CHARS when no OTel limit is set
    # (tests/test_too_large.py), the SDK's cut moved out by the margin like every other.
    assert configurator._log_limits(unset).max_log_record_attribute_length == 65536 + 1024


@needs_log_limits
def test_log_record_attributes_are_cut_after_scrubbing():
    settings = load_settings({"OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT": str(LIMIT)})
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(log_record_limits=configurator._log_limits(settings))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    text, part = STRADDLING["card"]
    provider.get_logger("t").emit(LogRecord(body=text, attributes={"q": text}))
    scrubber = Scrubber(limits=AttributeLimits(None, None, settings.scrub.log_attribute_length))
    (record,) = scrubber.scrub_logs(exporter.get_finished_logs())
    value = record.log_record.attributes["q"]
    assert part not in value and len(value) <= LIMIT
    assert record.log_record.body == "x" * (LIMIT - 8) + " [REDACTED:credit_card] end"  # bodies have no limit
    # the fallback (value by value) path cuts too
    assert scrubber._keys is not None
    from agentwatch.distro.scrub import fallback

    safe = fallback._log_safely(scrubber, exporter.get_finished_logs()[0])
    assert len(safe.log_record.attributes["q"]) <= LIMIT and part not in safe.log_record.attributes["q"]


def test_a_cut_never_splits_a_mark():
    text = "abc [REDACTED:credit_card] def"
    for limit in range(len(text) + 2):
        out = cut(text, limit)
        assert len(out) <= limit and text.startswith(out)
        assert "[REDACTED" not in out or "[REDACTED:credit_card]" in out, (limit, out)


def test_content_limit_scrubs_first_and_bounds_the_work(monkeypatch):
    """AGENTWATCH_GENAI_CONTENT_MAX_CHARS: a secret across the limit is gone, and a 1 MB text costs
    the scrubbing of max_chars + MARGIN characters, not of 1 MB."""
    seen: list[int] = []
    real = g.scrub.scrub_text

    def spy(text: str) -> str:
        seen.append(len(text))
        return real(text)

    monkeypatch.setattr(g.scrub, "scrub_text", spy)
    text = "x" * 90 + f" {CARD} " + "y" * 1_000_000
    out = g.scrub_text(text, 100)
    assert CARD[:6] not in out and out.startswith("x" * 90)
    assert out.endswith("chars]") and "...[truncated " in out
    assert seen == [100 + MARGIN]
    kept = out.split("...[truncated ")[0]
    dropped = int(out.rsplit(" ", 2)[-2])
    assert len(kept) <= 100 and dropped > 1_000_000 - 2000
    assert g.scrub_text("short jane@example.com", 100) == "short [REDACTED:email]"


def test_scrub_and_cut_counts_what_was_cut():
    text = "a secret " + "z" * 5000
    kept, dropped = scrub_and_cut(lambda s: s.replace("secret", "[REDACTED:x]"), text, 10)
    scrubbed = "a [REDACTED:x] " + "z" * (10 + MARGIN - 9)  # what was scrubbed: the first 10 + MARGIN chars
    assert kept == "a " and dropped == (len(text) - (10 + MARGIN)) + (len(scrubbed) - 2)


SCRIPT = textwrap.dedent(
    """
    import logging
    import agentwatch
    agentwatch.configure()
    from opentelemetry import trace
    card = "4111111111111111"
    with trace.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("q", "x" * 56 + " " + card + " end")
        span.add_event("e", {"q": "x" * 58 + " jane.doe@example.com"})
    logging.getLogger("app").warning("hello", extra={"q": "x" * 56 + " " + card + " end"})
    trace.get_tracer_provider().force_flush()
    """
)


@needs_log_limits
def test_configure_end_to_end_through_the_otlp_exporter(tmp_path):
    """agentwatch.configure() with OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=64, the real OTLP exporter, the receiver."""
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(**rx.env(), OTEL_TRACES_EXPORTER="otlp", OTEL_LOGS_EXPORTER="otlp", OTEL_METRICS_EXPORTER="none",
                        OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="64", AGENTWATCH_ENDPOINT_CHECK="false", OTEL_SERVICE_NAME="cut")
        script = tmp_path / "app.py"
        script.write_text(SCRIPT)
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert rx.wait_for(lambda r: r.spans(name="s") and r.logs(), timeout=10)
        (span,) = rx.spans(name="s")
        (record,) = [r for r in rx.logs() if r["body"] == "hello"]
    values = [span["attributes"]["q"], span["events"][0]["attributes"]["q"], record["attributes"]["q"]]
    for value in values:
        assert len(value) <= 64 and "4111" not in value and "jane" not in value, json.dumps(values)
        assert value.startswith("x" * 56)
