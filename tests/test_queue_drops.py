"""Spans dropped because the SDK batch queue is full are counted and reported once, not logged per span
(in-process; the service-level check is tests/test_faults.py)."""

from __future__ import annotations

import logging
import threading

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentwatch.distro import _diagnostics, exporters


class _Stuck(SpanExporter):
    """An exporter whose first export hangs until released (a blackholed collector)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans):
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.release.set()


def test_queue_full_drops_are_counted_and_warned_once(caplog):
    exporters.queue_drops.counts.clear()
    exporters.quiet_upstream_retry_logs()
    exporters.quiet_upstream_retry_logs()  # idempotent
    queue_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
    assert queue_logger.filters.count(exporters.queue_drops) == 1
    assert queue_logger.filters[0] is exporters.queue_drops  # before the SDK's DuplicateFilter

    stuck = _Stuck()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(stuck, max_queue_size=8, max_export_batch_size=2, schedule_delay_millis=10)
    )
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            with tracer.start_as_current_span("s"):
                pass
    stuck.release.set()
    provider.shutdown()

    dropped = exporters.queue_drops.counts.get("span", 0)
    assert 100 - 8 - 2 - 2 <= dropped <= 100 - 8, dropped  # all but the queue and the batch(es) in flight
    assert not [r for r in caplog.records if "Queue full" in r.getMessage()], "the per-span SDK line is swallowed"
    messages = _diagnostics.messages()
    assert len([m for m in messages if "span export queue is full" in m]) == 1, messages
    exporters.report_queue_drops()
    assert [m for m in _diagnostics.messages() if m == f"at exit, {dropped} spans had been dropped because the export queue was full"]
    exporters.queue_drops.counts.clear()
