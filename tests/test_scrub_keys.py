"""Keys are scrubbed like values: attribute keys, dict keys at any depth, log extras, tracestate.

``logger.info("search", extra=dict(request.query_params))`` or ``span.set_attributes(form)`` puts
user text in keys. A key that is personal data is exported as its scrubbed text (``[REDACTED:email]``),
keys that become equal keep every value (``#2``, ``#3``...), and the value under a renamed key is
still scrubbed as a value. The incoming ``tracestate`` is exported scrubbed.
"""

from __future__ import annotations

import io
import json
import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags, TraceState

from agentwatch.distro import logs as stdout_logs
from agentwatch.distro.scrub import Scrubber
from agentwatch.distro.scrub import values as scrub_values
from agentwatch.distro.settings import reset_settings

S = Scrubber()
CARD = "4111111111111111"


def test_a_key_that_is_personal_data_is_renamed():
    out = S.scrub_attributes({"jane@example.com": "1", CARD: "2", "plain": "3"})
    assert out == {"plain": "3", "[REDACTED:email]": "1", "[REDACTED:credit_card]": "2"}
    assert S.scrub_key("q=my card " + CARD) == "q=my card [REDACTED:credit_card]"
    assert S.scrub_key("gen_ai.usage.input_tokens") == "gen_ai.usage.input_tokens"


def test_keys_that_become_equal_keep_every_value():
    out = S.scrub_attributes({"a@example.com": "x", "b@example.com": "y", "[REDACTED:email]": "z", "c@example.com": "w"})
    assert out == {"[REDACTED:email]": "z", "[REDACTED:email]#2": "x", "[REDACTED:email]#3": "y",
                   "[REDACTED:email]#4": "w"}


def test_the_value_under_a_renamed_key_is_still_scrubbed():
    out = S.scrub_attributes({"jane@example.com": "call +1 415 555 0134", "password=hunter2": "hunter3"})
    assert out == {"[REDACTED:email]": "call [REDACTED:phone]", "password=[REDACTED:password]": "[REDACTED:password]"}


def test_dict_keys_at_any_depth_and_int_keys():
    body = {"q": {"jane@example.com": ["x", {CARD: 1}]}, int(CARD): "v", 7: "seven"}
    out = S.scrub_value(body)
    assert out == {"q": {"[REDACTED:email]": ["x", {"[REDACTED:credit_card]": 1}]}, 7: "seven",
                   "[REDACTED:credit_card]": "v"}


def test_the_batch_paths_rename_keys_too():
    """The joined-batch walk, the key-by-key walk (16+ log records) and the value-by-value fallback agree."""
    maps = [{"corpus.id": str(i), f"user{i}@example.com": "v", "n": i} for i in range(20)]
    _, batch = scrub_values.scrub_parts(S, [], maps)
    assert all(set(m) == {"corpus.id", "[REDACTED:email]", "n"} for m in batch)
    assert [scrub_values.attributes_safely(S, m) for m in maps] == batch


def test_metric_series_whose_keys_became_equal_are_merged():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("t").create_counter("searches")
    counter.add(1, {"a@example.com": "1"})
    counter.add(2, {"b@example.com": "1"})
    counter.add(4, {"route": "/x"})
    data = S.scrub_metrics_safely(reader.get_metrics_data())
    points = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert sorted((sorted(p.attributes.items()), p.value) for p in points) == [
        ([("[REDACTED:email]", "1")], 3), ([("route", "/x")], 4)]


def test_the_span_and_link_tracestate_is_scrubbed():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    state = TraceState([("corpus", "jane@example.com"), ("vendor", "t61rcWkgMzE")])
    remote = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, TraceFlags(1), state)
    tracer = provider.get_tracer("t")
    tracer.start_span("s", context=trace.set_span_in_context(NonRecordingSpan(remote)), links=[Link(remote)]).end()
    (original,) = exporter.get_finished_spans()
    (span,) = S.scrub_spans([original])
    assert dict(span.context.trace_state) == {"corpus": "[REDACTED:email]", "vendor": "t61rcWkgMzE"}
    assert dict(span.links[0].context.trace_state) == {"corpus": "[REDACTED:email]", "vendor": "t61rcWkgMzE"}
    assert span.context.span_id == original.context.span_id and span.context.trace_id == original.context.trace_id
    assert dict(original.context.trace_state)["corpus"] == "jane@example.com"  # the propagated one is left alone
    clean = tracer.start_span("clean")
    clean.end()
    assert S.scrub_spans([exporter.get_finished_spans()[-1]])[0] is exporter.get_finished_spans()[-1]


def test_stdout_log_extras_keys_are_scrubbed(monkeypatch):
    reset_settings()
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    handler = stdout_logs.StdoutHandler("json")
    logger = logging.getLogger("keys.stdout")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        logger.warning("search", extra={"jane@example.com": "x", "bob@example.com": "y", CARD: "z", "auth.method": "oauth2"})
    finally:
        logger.handlers[:] = []
    line = json.loads(stream.getvalue())
    assert line["[REDACTED:email]"] == "x" and line["[REDACTED:email]#2"] == "y"
    assert line["[REDACTED:credit_card]"] == "z" and line["auth.method"] == "oauth2"
    assert "jane" not in stream.getvalue() and CARD not in stream.getvalue()


def test_the_span_context_layout_read_by_the_fast_path():
    """scrub_batch reads a span context's tracestate as item 4 of the tuple (no property call per span)."""
    from agentwatch.distro.scrub import spans

    state = TraceState([("k", "v")])
    context = SpanContext(1, 2, True, TraceFlags(1), state)
    assert context[spans._TRACE_STATE] is context.trace_state is state
