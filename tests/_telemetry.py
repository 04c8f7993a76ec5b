"""Real SDK providers for traces, metrics and logs that export to memory (test helper).

The ``telemetry`` fixture of tests/conftest.py gives one per test; a test file that needs more
(a span processor ahead of the exporter, helpers of its own) subclasses or builds ``Telemetry``.
"""

from __future__ import annotations

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.distro import tracing


class Telemetry:
    """A TracerProvider (agentwatch's), MeterProvider and LoggerProvider with in-memory exporters / reader.

    ``span_processors`` run before the exporter's processor (e.g. one that adds attributes at
    ``on_end``). Metrics are read by collecting (cumulative, so each read has everything so far).
    """

    def __init__(self, *span_processors: SpanProcessor) -> None:
        self.span_exporter = InMemorySpanExporter()
        # agentwatch's span path, as the distro installs it (tests/test_lean_spans.py compares it with the
        # SDK's); on an SDK it does not support (the lowest resolution, 1.44) the stock one, as the distro does.
        self.tracer_provider = tracing.LeanTracerProvider() if tracing.SUPPORTED else TracerProvider()
        for processor in span_processors:
            self.tracer_provider.add_span_processor(processor)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        self.log_exporter = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))

    def spans(self, scope: str | None = None) -> list[ReadableSpan]:
        """The finished spans, in end order (only those of instrumentation scope ``scope`` if given)."""
        return [s for s in self.span_exporter.get_finished_spans() if scope is None or s.instrumentation_scope.name == scope]

    def spans_by_name(self) -> dict[str, ReadableSpan]:
        """The finished spans by name (the last one of a name wins)."""
        return {span.name: span for span in self.spans()}

    def metrics_data(self) -> MetricsData | None:
        """One collection (observable instruments' callbacks run)."""
        return self.metric_reader.get_metrics_data()

    def metrics(self, scope: str | None = None) -> dict[str, Metric]:
        """One collection as ``{metric name: metric}`` (only scope ``scope``'s if given)."""
        found: dict[str, Metric] = {}
        data = self.metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                if scope is None or sm.scope.name == scope:
                    for metric in sm.metrics:
                        found[metric.name] = metric
        return found

    def points(self, name: str, scope: str | None = None) -> list:
        """One collection's data points of the metric ``name`` (of every scope, or of ``scope``)."""
        found: list = []
        data = self.metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                if scope is None or sm.scope.name == scope:
                    for metric in sm.metrics:
                        if metric.name == name:
                            found.extend(metric.data.data_points)
        return found

    def logs(self) -> list:
        """The emitted log records (``ReadableLogRecord``s), in order."""
        return list(self.log_exporter.get_finished_logs())

    def clear(self) -> None:
        """Forget the finished spans and log records (metrics are cumulative: they stay)."""
        self.span_exporter.clear()
        self.log_exporter.clear()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()
