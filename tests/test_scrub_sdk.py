"""The scrubbed copies against the SDK in use: what an exporter reads of them holds no PII.

The span copy (``scrub.spans.ScrubbedSpan``) is built fast, by copying the SDK span's fields and
replacing the scrubbed ones by their private names (``SPAN_FIELDS``). Were one renamed in an SDK
release, the copy would show the original value and the exporter would send it unscrubbed, with
nothing failing. These tests fail instead: every private name set must exist on a real SDK span and
be what its public property reads, and a span (and a log record) with PII in every field an
exporter reads must come out clean through the public properties, ``to_json`` (the console
exporter) and the OTLP encoding.
"""

from __future__ import annotations

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from agentwatch.distro.scrub import Scrubber
from agentwatch.distro.scrub.spans import SPAN_FIELDS, ScrubbedSpan

EMAIL, IP, CARD = "alice@example.com", "203.0.113.7", "4111 1111 1111 1111"
PII = (EMAIL, IP, CARD, "4111111111111111")


def _sdk_span(limits: SpanLimits | None = None) -> ReadableSpan:
    """A span as the SDK hands it to an exporter, with PII in every field an exporter reads."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "shop", "host.owner": EMAIL}), span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    linked = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    extras = {f"extra.{index}": index for index in range(4)}  # the first dropped over a limit
    with provider.get_tracer("sdk-fields").start_as_current_span(
        f"refund for {EMAIL}", links=[Link(linked, {"peer": IP})], attributes=extras
    ) as span:
        span.set_attributes({"client.address": IP, "card": CARD})
        span.add_event(f"paid by {CARD}", {"by": EMAIL})
        span.set_status(Status(StatusCode.ERROR, f"declined for {EMAIL}"))
    provider.shutdown()
    (finished,) = memory.get_finished_spans()
    return finished


def _clean(text: str) -> None:
    for secret in PII:
        assert secret not in text, (secret, text)


def test_every_private_span_field_set_is_what_the_sdk_reads():
    span = _sdk_span()
    assert type(span) is ReadableSpan  # what exporters get, so ScrubbedSpan takes its fast path
    for public, private in SPAN_FIELDS.items():
        assert private in vars(span), f"ReadableSpan has no {private} any more (read by .{public})"
    # A copy with new values in each field: each public property shows the new one.
    name, attributes, events = "new name", {"k": "new"}, [Event("new event", {"e": 1}, 5)]
    links = [Link(span.context, {"l": 2})]
    status, resource = Status(StatusCode.OK), Resource({"service.name": "new"})
    copy = ScrubbedSpan(span, name, attributes, events, links, status, resource)
    assert copy.name == name and dict(copy.attributes) == attributes
    assert copy.events == tuple(events) and copy.links == tuple(links)
    assert copy.status is status and copy.resource is resource
    assert copy.context is span.context and copy.start_time == span.start_time  # the rest is the span's
    # The batch walk reads the BoundedAttributes behind ``attributes``, and the dict inside it.
    assert dict(span._attributes) == dict(span.attributes) == dict(span._attributes._dict)


def test_a_scrubbed_span_shows_no_pii_to_an_exporter():
    span = _sdk_span(SpanLimits(max_span_attributes=4))
    assert span.dropped_attributes > 0
    (scrubbed,) = Scrubber().scrub_spans([span])
    assert isinstance(scrubbed, ScrubbedSpan)
    read = [
        scrubbed.name,
        scrubbed.status.description,
        repr(dict(scrubbed.attributes)),
        repr([(e.name, dict(e.attributes)) for e in scrubbed.events]),
        repr([dict(link.attributes) for link in scrubbed.links]),
        repr(dict(scrubbed.resource.attributes)),
        scrubbed.to_json(),
    ]
    for text in read:
        _clean(text)
    encoded = encode_spans([scrubbed])
    _clean(encoded.SerializeToString().decode("utf-8", "replace"))
    (original,) = encode_spans([span]).resource_spans[0].scope_spans[0].spans
    (exported,) = encoded.resource_spans[0].scope_spans[0].spans
    assert exported.dropped_attributes_count == original.dropped_attributes_count > 0
    assert exported.trace_id == original.trace_id and exported.span_id == original.span_id
    assert "[REDACTED:email]" in scrubbed.name and scrubbed.attributes["client.address"] == "[REDACTED:ipv4]"
    assert scrubbed.attributes["card"] == "[REDACTED:credit_card]" and scrubbed.events[0].attributes["by"] == "[REDACTED:email]"


def test_a_scrubbed_log_record_shows_no_pii_to_an_exporter():
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": "shop", "host.owner": EMAIL}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    provider.get_logger("sdk-fields").emit(
        LogRecord(
            body={"note": f"card {CARD}", "who": [EMAIL]},
            attributes={"client.address": IP},
            event_name=f"refund.{EMAIL}",
            severity_number=SeverityNumber.INFO,
        )
    )
    provider.shutdown()
    (record,) = memory.get_finished_logs()
    (scrubbed,) = Scrubber().scrub_logs([record])
    assert scrubbed is not record
    log = scrubbed.log_record
    for text in (repr(log.body), repr(dict(log.attributes)), str(log.event_name), repr(dict(scrubbed.resource.attributes)), scrubbed.to_json()):
        _clean(text)
    _clean(encode_logs([scrubbed]).SerializeToString().decode("utf-8", "replace"))
    assert log.severity_number is SeverityNumber.INFO and log.trace_id == record.log_record.trace_id


def test_a_span_whose_attributes_field_is_gone_fails_closed(lenient):
    """Were ``_attributes`` renamed, the batch walk raises (it reads it without a default) and the
    value-by-value fallback, which reads only public properties, still scrubs. (With a default,
    this span would look clean and be passed on as it is.)"""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("sdk-fields").start_as_current_span("GET /health", attributes={"client.address": IP}):
        pass
    provider.shutdown()
    (span,) = memory.get_finished_spans()

    class Renamed(ReadableSpan):
        def __init__(self, span: ReadableSpan) -> None:
            self.__dict__.update(span.__dict__)
            self._attributes_v2 = self.__dict__.pop("_attributes")

        @property
        def attributes(self):
            return dict(self._attributes_v2)

        @property
        def dropped_attributes(self) -> int:
            return 0

    (scrubbed,) = Scrubber().scrub_spans([Renamed(span)])
    assert dict(scrubbed.attributes) == {"client.address": "[REDACTED:ipv4]"}
    assert scrubbed.name == "GET /health" and scrubbed.context.trace_id == span.context.trace_id
