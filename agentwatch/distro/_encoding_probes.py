"""Spans and log records from a real SDK that exercise every field the OTLP encoders write.

:mod:`agentwatch.distro.otlp_encoding` checks its bytes against the stock encoder's on these before
it is used, and the tests start from them. Built with a private provider (nothing is exported), quietly: cases
that make the SDK log (dropped attributes, events, links) are in tests/test_otlp_encoding.py.
"""

from __future__ import annotations

from typing import Any

_ATTRIBUTES: dict[str, Any] = {
    "s": "value", "empty": "", "unicode": "Grüße, 東京 \u200b", "t": True, "f": False, "zero": 0, "i": 42,
    "neg": -7, "big": 2**62, "x": 1.5, "nx": -0.0, "b": b"\x00\xff", "seq": ("a", "b"), "ints": (1, 2, 3),
    "mixed": (1.5, 2.5), "bools": (True, False), "empty_seq": (),
}


def _attributes() -> dict[str, Any]:
    from opentelemetry import attributes

    if callable(getattr(attributes, "_clean_attribute_value", None)):  # opentelemetry-sdk 1.45+: bytes stay bytes
        return _ATTRIBUTES
    return {**_ATTRIBUTES, "b": b"bytes"}  # older SDKs decode bytes to str, with a warning for what is not UTF-8


def spans() -> list[Any]:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "probe", "n": 1}, schema_url="https://s/1"),
                              span_limits=SpanLimits(max_attributes=40, max_events=4, max_links=2))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("probe.a", "1.0", schema_url="https://s/2", attributes={"scope.attr": "x"})
    other = provider.get_tracer("probe.b")
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1"), ("k", "w")]))
    with tracer.start_as_current_span("server é", context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
                                      kind=SpanKind.SERVER, attributes=_attributes(),
                                      links=[Link(remote, {"link.attr": 1}), Link(remote)]) as span:
        span.add_event("first", {"e": "v", "n": 1})
        span.add_event("second")
        span.set_status(Status(StatusCode.ERROR, "it failed: ü"))
        for kind in (SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
            with other.start_as_current_span(f"child {kind.name}", kind=kind) as child:
                child.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(kept.get_finished_spans())


def logs() -> list[Any]:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    try:
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    except ImportError:  # older SDKs
        from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogRecordExporter  # type: ignore[no-redef]

    kept = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": "probe"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    logger = provider.get_logger("probe.logs", "2.0")
    for body, severity in (("plain", SeverityNumber.INFO), ({"k": [1, "x"], "n": None}, SeverityNumber.ERROR),
                           (None, SeverityNumber.UNSPECIFIED), (["a", 1.5], SeverityNumber.WARN), ("", None)):
        logger.emit(body=body, severity_number=severity, severity_text=severity.name if severity else None,
                    attributes={"code.function.name": "f", "n": 3}, timestamp=1_700_000_000_000_000_001,
                    observed_timestamp=1_700_000_000_000_000_002)
    logger.emit(body="event", event_name="probe.event", attributes=_ATTRIBUTES)
    provider.shutdown()
    return list(kept.get_finished_logs())
