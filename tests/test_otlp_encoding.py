"""agentwatch's direct OTLP encoder (agentwatch/distro/otlp_encoding.py) writes the stock encoder's bytes.

Byte equality with opentelemetry-exporter-otlp-proto-common's ``encode_spans`` / ``encode_logs`` on
batches built to trip it (every attribute type, values the stock encoder skips, limits that drop
attributes/events/links, several resources and scopes interleaved, scrubbed copies, a cache churned
past its limit), and the content a real OTLP/HTTP exporter delivers to a receiver.
"""

from __future__ import annotations

import enum
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from agentwatch.distro import _encoding_probes, otlp_encoding

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
except ImportError:  # older SDKs
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogRecordExporter  # type: ignore[no-redef]

from otlp_receiver import OTLPReceiver


class Colour(enum.IntEnum):
    RED = 1


class Label(str, enum.Enum):
    A = "a"


def _same_spans(spans: list[Any]) -> None:
    assert otlp_encoding.encode_spans_bytes(spans) == encode_spans(spans).SerializePartialToString()


def _same_logs(records: list[Any]) -> None:
    assert otlp_encoding.encode_logs_bytes(records) == encode_logs(records).SerializeToString()


def test_probe_batches_are_byte_identical():
    spans, logs = _encoding_probes.spans(), _encoding_probes.logs()
    assert len(spans) >= 5 and len(logs) >= 5
    _same_spans(spans)
    _same_logs(logs)


def test_probes_are_quiet(caplog):
    """The probes run at start-up: they must not put SDK warnings into the app's log."""
    with caplog.at_level(logging.DEBUG):
        _encoding_probes.spans()
        _encoding_probes.logs()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def _provider(resource: Resource, **limits: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, span_limits=SpanLimits(**limits) if limits else None)
    provider.add_span_processor(SimpleSpanProcessor(kept))
    return provider, kept


def test_hostile_and_limited_spans(caplog):
    provider, kept = _provider(Resource({"service.name": "a"}), max_attributes=5, max_events=2, max_links=1,
                               max_event_attributes=1, max_link_attributes=1, max_attribute_length=8)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("limits", links=[Link(trace.INVALID_SPAN_CONTEXT, {"a": 1, "b": 2})] * 3) as span:
        for index in range(9):
            span.set_attribute(f"k{index}", "a long string value")
        for index in range(4):
            span.add_event(f"e{index}", {"a": 1, "b": 2})
    with tracer.start_as_current_span("\ud800 lone surrogate in a name is the stock encoder's failure too"):
        pass
    provider.shutdown()
    spans = list(kept.get_finished_spans())
    provider, kept = _provider(Resource({"service.name": "a"}))
    with provider.get_tracer("t").start_as_current_span("odd values") as span:
        span.set_attribute("enum.int", Colour.RED)
        span.set_attribute("enum.str", Label.A)
        span.set_attribute("too.big", 2**64)  # not an int64: skipped and logged by both
        span.set_attribute("negative", -(2**63))
        span.set_attribute("surrogate", "x\udc80y")
        span.set_attribute("long", "é" * 300)  # past the pair cache's length
        span.set_attribute("nested.empty", ())
        span.set_attribute("nan", float("nan"))
        span.set_attribute("inf", float("-inf"))
        span.set_attribute("", "empty key")
        span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    spans += list(kept.get_finished_spans())
    name_failure = spans.pop(1)
    with pytest.raises(UnicodeEncodeError):
        encode_spans([name_failure]).SerializePartialToString()
    with pytest.raises(UnicodeEncodeError):
        otlp_encoding.encode_spans_bytes([name_failure])
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        stock = encode_spans(spans).SerializePartialToString()
    stock_errors = [r.getMessage() for r in caplog.records]
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        ours = otlp_encoding.encode_spans_bytes(spans)
    assert ours == stock
    assert [r.getMessage() for r in caplog.records] == stock_errors
    assert len(stock_errors) == 2  # too.big, surrogate


def test_resources_and_scopes_interleaved():
    first, kept_a = _provider(Resource({"service.name": "a"}, schema_url="https://s/a"))
    second, kept_b = _provider(Resource({"service.name": "a"}, schema_url="https://s/a"))  # equal, not identical
    third, kept_c = _provider(Resource({"service.name": "c"}))
    spans = []
    for index in range(6):
        for provider, kept in ((first, kept_a), (third, kept_c), (second, kept_b)):
            tracer = provider.get_tracer(f"scope{index % 3}", "1" if index % 2 else None)
            with tracer.start_as_current_span(f"s{index}", kind=SpanKind(index % 5)):
                pass
            spans.extend(kept.get_finished_spans())
            kept.clear()
    _same_spans(spans)
    _same_spans([])


def test_the_pair_cache_churned_past_its_limit():
    provider, kept = _provider(Resource({"service.name": "a"}))
    tracer = provider.get_tracer("t")
    for index in range(otlp_encoding._PAIR_LIMIT // 4 + 10):
        with tracer.start_as_current_span("s", attributes={"user": f"u{index}", "n": index, "flag": index % 2 == 0,
                                                           "route": "/chat"}):
            pass
    for value in (1, True, 1.0, 0, False, "1"):  # equal in Python, different on the wire
        with tracer.start_as_current_span("s", attributes={"v": value}):
            pass
    spans = list(kept.get_finished_spans())
    _same_spans(spans[-6:])
    for start in range(0, len(spans), 500):
        _same_spans(spans[start:start + 500])
    assert len(otlp_encoding._pairs) <= otlp_encoding._PAIR_LIMIT


def test_scrubbed_copies_encode_identically():
    from agentwatch.distro.scrub import Scrubber

    provider, kept = _provider(Resource({"service.name": "a"}))
    with provider.get_tracer("t").start_as_current_span("s", attributes={"user.email": "jane@example.com",
                                                                         "q": "card 4111 1111 1111 1111"}) as span:
        span.add_event("e", {"token": "sk-" + "a" * 40})
    scrubbed = Scrubber().scrub_spans(list(kept.get_finished_spans()))
    _same_spans(scrubbed)
    assert b"jane@example.com" not in otlp_encoding.encode_spans_bytes(scrubbed)


def _logs(**emit: Any) -> list[Any]:
    kept = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": "l"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    logger = provider.get_logger("l")
    tracer_provider, _ = _provider(Resource({}))
    with tracer_provider.get_tracer("t").start_as_current_span("inside"):
        logger.emit(body="in a span", severity_number=SeverityNumber.INFO, **emit)
    for body in ({"nested": {"deep": [1, {"x": None}]}}, b"\x00bytes", 3, 2.5, True, ["a", ["b"]], "é" * 400, ""):
        logger.emit(body=body, severity_number=SeverityNumber.DEBUG, **emit)
    provider.shutdown()
    return list(kept.get_finished_logs())


def test_log_records():
    _same_logs(_logs(attributes={"code.function.name": "handler", "n": 1, "seq": ("a",)}))
    _same_logs(_logs(event_name="app.event"))


@pytest.fixture
def swapped() -> Iterator[None]:
    otlp_encoding.uninstall()
    assert otlp_encoding.install()
    yield
    otlp_encoding.uninstall()


def test_a_real_exporter_delivers_the_same_content(swapped):
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    spans, logs = _encoding_probes.spans(), _encoding_probes.logs()
    received = []
    for install in (True, False):
        if not install:
            otlp_encoding.uninstall()
        with OTLPReceiver(protocol="http") as receiver:
            OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces").export(spans)
            OTLPLogExporter(endpoint=f"{receiver.endpoint}/v1/logs").export(logs)
            assert receiver.wait_for(lambda r: len(r.spans()) == len(spans) and len(r.logs()) == len(logs))
            received.append((receiver.spans(), receiver.logs()))
    assert received[0] == received[1]


def test_install_swaps_and_uninstall_restores(swapped):
    from opentelemetry.exporter.otlp.proto.http import _log_exporter, trace_exporter

    assert trace_exporter.encode_spans is otlp_encoding._fast_spans
    assert _log_exporter.encode_logs is otlp_encoding._fast_logs
    otlp_encoding.uninstall()
    assert trace_exporter.encode_spans is encode_spans
    assert _log_exporter.encode_logs is encode_logs


def test_not_installed_when_the_bytes_differ(monkeypatch):
    otlp_encoding.uninstall()
    monkeypatch.setattr(otlp_encoding, "_string", lambda tag, value: b"" if not value else tag + b"\x00")
    assert not otlp_encoding.install()
    assert not otlp_encoding.installed()


def _installed_after_setup(extra_env: dict[str, str]) -> str:
    code = "from agentwatch.distro import configurator, otlp_encoding; configurator.setup(); print(otlp_encoding.installed())"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "AGENTWATCH_LEAN"))}
    env.update({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "AGENTWATCH_ENDPOINT_CHECK": "false",
                "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", **extra_env})
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_pipeline_uses_it_by_default_and_the_switch_turns_it_off():
    assert _installed_after_setup({}) == "True"
    assert _installed_after_setup({"AGENTWATCH_LEAN_SDK": "false"}) == "False"
