"""A record the receiver refuses as too large costs only itself (issue 16, item 5).

A real OTLP/HTTP log exporter behind agentwatch's guard sends to a receiver that answers 413 for any
request body over a limit (what an ingress with a 1 MiB body limit does): the batch is split until the
oversized record is alone, that record is dropped and counted, every other record arrives, and the
destination is not reported as down.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor

from agentwatch.distro import _diagnostics, exporters

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
except ImportError:  # older SDKs
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogRecordExporter  # type: ignore[no-redef]

LIMIT = 256 * 1024


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[str] = []
        self.refused = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers["Content-Length"])
        data = self.rfile.read(length)
        if length > LIMIT:
            self.server.refused += 1
            self.send_response(413, "Request Entity Too Large")
        else:
            request = ExportLogsServiceRequest()
            request.ParseFromString(data)
            for resource in request.resource_logs:
                for scope in resource.scope_logs:
                    self.server.bodies.extend(record.body.string_value for record in scope.log_records)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _records(bodies: list[str]) -> list:
    kept = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    logger = provider.get_logger("app")
    for body in bodies:
        logger.emit(body=body, severity_number=SeverityNumber.INFO)
    provider.shutdown()
    return list(kept.get_finished_logs())


def test_one_oversized_record_costs_only_itself(receiver, monkeypatch):
    monkeypatch.setattr(exporters, "too_large", {})
    exporters.quiet_upstream_retry_logs()
    endpoint = f"http://127.0.0.1:{receiver.server_port}/v1/logs"
    health = exporters.ExportHealth("the OTLP collector at test", "fix it")
    guarded = exporters.GuardedLogExporter("otlp", OTLPLogExporter(endpoint=endpoint), health)
    bodies = [f"ordinary record {index}" for index in range(300)]
    bodies[137] = "x" * (1024 * 1024)  # one 1 MiB log line
    result = guarded.export(_records(bodies))
    assert result is LogRecordExportResult.FAILURE  # not everything was delivered
    assert sorted(receiver.bodies) == sorted(body for index, body in enumerate(bodies) if index != 137)
    assert exporters.too_large == {"logs": 1}
    assert not health.failing and not health.dropped  # the collector answered: not "down"
    said = " ".join(_diagnostics.messages())
    assert "refused a logs record as too large (HTTP 413" in said
    assert "cannot export" not in said
    exporters.report_too_large()
    assert "1 logs records had been dropped because a receiver refused them as too large" in " ".join(_diagnostics.messages())


def test_batches_under_the_limit_go_in_one_request(receiver):
    exporters.quiet_upstream_retry_logs()
    endpoint = f"http://127.0.0.1:{receiver.server_port}/v1/logs"
    guarded = exporters.GuardedLogExporter("otlp", OTLPLogExporter(endpoint=endpoint), None)
    assert guarded.export(_records([f"r{index}" for index in range(100)])) is LogRecordExportResult.SUCCESS
    assert len(receiver.bodies) == 100 and receiver.refused == 0


def test_a_huge_log_body_is_scrubbed_then_cut_with_a_marker():
    """AGENTWATCH_LOG_BODY_MAX_CHARS (issue 16, item 5): the body is scrubbed as far as it is kept, then cut
    with a marker; a secret that straddles the cut is still removed, and the work is bounded."""
    from agentwatch.distro.scrub import Scrubber
    from agentwatch.distro.scrub.limits import AttributeLimits

    scrubber = Scrubber(limits=AttributeLimits(log_body=1000))
    head = "x" * 990 + " jane.doe@example.com "  # an address that starts before the limit and ends after it
    records = _records([head + "y" * (2 * 1024 * 1024), "short line with bob@example.com"])
    scrubbed = scrubber.scrub_logs(records)
    big = scrubbed[0].log_record.body
    assert len(big) < 1100 and big.endswith(" chars]") and "...[truncated " in big
    assert "jane" not in big and "example.com" not in big
    assert int(big.rsplit("[truncated ", 1)[1].split()[0]) > 2 * 1024 * 1024  # what was left out, counted
    assert scrubbed[1].log_record.body == "short line with [REDACTED:email]"


def test_the_body_cap_is_on_by_default_and_zero_switches_it_off():
    from agentwatch.distro.scrub import scrubber_for
    from agentwatch.distro.settings import load_settings

    assert scrubber_for(load_settings({})).limits.log_body == 65536
    off = scrubber_for(load_settings({"AGENTWATCH_LOG_BODY_MAX_CHARS": "0"}))
    assert off.limits is None or off.limits.log_body is None


def test_one_huge_log_attribute_is_cut_after_scrubbing_by_default():
    from agentwatch.distro.settings import load_settings

    assert load_settings({}).scrub.log_attribute_length == 65536
    assert load_settings({"OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100"}).scrub.log_attribute_length == 100
    assert load_settings({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "200"}).scrub.log_attribute_length == 200
    from agentwatch.distro.scrub import scrubber_for

    scrubber = scrubber_for(load_settings({}))
    records = _records(["body"])
    record = records[0].log_record
    record.attributes = {"payload": "z" * 200_000 + " carol@example.com"}  # as a huge extra= would
    (scrubbed,) = scrubber.scrub_logs(records)
    assert len(scrubbed.log_record.attributes["payload"]) == 65536
