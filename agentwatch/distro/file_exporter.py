"""OTLP/JSON-lines file exporters: telemetry on disk, readable by the Collector.

Three exporters, registered under the SDK exporter entry-point name
``otlp_json_file``, write one OTLP export request per line to
``traces.jsonl``, ``metrics.jsonl`` and ``logs.jsonl``::

    OTEL_TRACES_EXPORTER=otlp_json_file \\
    OTEL_METRICS_EXPORTER=otlp_json_file \\
    OTEL_LOGS_EXPORTER=otlp_json_file \\
    AGENTWATCH_FILE_DIR=./agentwatch-data \\
        opentelemetry-instrument python app.py

    agentwatch report ./agentwatch-data        # read them back

or from code::

    from agentwatch.distro.file_exporter import OTLPJsonFileSpanExporter
    provider.add_span_processor(BatchSpanProcessor(OTLPJsonFileSpanExporter("/tmp/otel")))

Format. Each line is an ``ExportTraceServiceRequest`` /
``ExportMetricsServiceRequest`` / ``ExportLogsServiceRequest`` in the OTLP/JSON
encoding (lowerCamelCase keys, enums as integers, 64-bit integers as strings,
``traceId`` / ``spanId`` / ``parentSpanId`` as lowercase hex, not base64). That
is what the OpenTelemetry Collector's ``otlpjsonfile`` receiver (and the
``file`` exporter's output) uses, so the files can be replayed into any
backend::

    receivers:
      otlpjsonfile:
        include: [./agentwatch-data/*.jsonl]

Several processes (gunicorn/uvicorn workers) may append to the same file: each
line is written with ``O_APPEND`` under an exclusive ``flock`` in one write
loop, and the file is opened per write, so forked workers need nothing special.

Size bound. Before a line is written, if the file plus the line would exceed
``max_bytes`` (``AGENTWATCH_FILE_MAX_MB``), ``traces.jsonl`` is renamed to
``traces.jsonl.1`` (replacing the older ``.1``), so a signal never takes much
more than ``2 * max_bytes``. A single line larger than ``max_bytes`` is still
written, alone in a fresh file (one batch is never split or dropped for size).

Failure. An export never raises: an I/O error (unwritable directory, full disk)
makes it return FAILURE and prints one warning per signal and error kind.
"""

from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import guard
from agentwatch.distro.settings import settings

__all__ = [
    "OTLPJsonFileLogExporter",
    "OTLPJsonFileMetricExporter",
    "OTLPJsonFileSpanExporter",
    "TRACES_FILE",
    "METRICS_FILE",
    "LOGS_FILE",
    "to_otlp_json",
]

TRACES_FILE = "traces.jsonl"
METRICS_FILE = "metrics.jsonl"
LOGS_FILE = "logs.jsonl"

# Bytes fields of the OTLP protos that OTLP/JSON writes as hex instead of the
# protobuf-JSON default (base64). AnyValue.bytesValue stays base64, as in OTLP/JSON.
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})

_CUMULATIVE = {
    kind: AggregationTemporality.CUMULATIVE
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        _Gauge,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}

_MAX_OPEN_ATTEMPTS = 100  # each retry means another writer rotated (made progress)


def _ids_to_hex(node: Any) -> None:
    """Rewrite base64 id fields to lowercase hex in place (recursively)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64decode(value, validate=True).hex()
                except (binascii.Error, ValueError):
                    pass
            elif isinstance(value, (dict, list)):
                _ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _ids_to_hex(item)


def to_otlp_json(message: Message) -> str:
    """One OTLP export request as a single OTLP/JSON line (no trailing newline)."""
    data = MessageToDict(message, preserving_proto_field_name=False, use_integers_for_enums=True)
    _ids_to_hex(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class _JsonLinesFile:
    """Appends whole lines to one size-bounded file shared by several processes."""

    def __init__(self, directory: str, filename: str, max_bytes: int) -> None:
        self.directory = directory
        self.path = os.path.join(directory, filename)
        self.rotated_path = self.path + ".1"
        self.max_bytes = max(1, int(max_bytes))

    def _open_locked(self) -> int:
        """Open the current file for append and hold its lock.

        Another process may rotate the file between our open and our lock; we
        then hold the lock on the renamed file, so check the inode and retry.
        """
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = -1
        for _ in range(_MAX_OPEN_ATTEMPTS):
            try:
                fd = os.open(self.path, flags, 0o600)
            except FileNotFoundError:
                # Telemetry holds request ids, prompts (when captured), hosts: the owner's only.
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                fd = os.open(self.path, flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                opened = os.fstat(fd)
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
            except BaseException:
                os.close(fd)
                raise
            if current is not None and (current.st_ino, current.st_dev) == (opened.st_ino, opened.st_dev):
                return fd
            os.close(fd)  # rotated under us: another writer made progress; try the new file
        raise OSError(errno.EAGAIN, f"{self.path} kept being rotated by other writers", self.path)

    def append(self, line: str) -> None:
        """Write ``line`` plus a newline as one unit; rotate first if it would not fit. Raises OSError."""
        data = memoryview((line + "\n").encode("utf-8"))
        for _ in range(_MAX_OPEN_ATTEMPTS):
            fd = self._open_locked()
            try:
                size = os.fstat(fd).st_size
                if size > 0 and size + len(data) > self.max_bytes:
                    try:
                        os.replace(self.path, self.rotated_path)
                    except FileNotFoundError:
                        pass  # cannot happen while we hold the current file's lock; retry anyway
                    continue  # the finally releases the lock; reopen the fresh file
                try:
                    while data:
                        written = os.write(fd, data)
                        if written <= 0:
                            raise OSError(errno.EIO, "short write", self.path)
                        data = data[written:]
                except OSError:
                    # e.g. disk full mid-line: take the partial line back so the
                    # next writer does not glue its line onto a fragment
                    try:
                        os.ftruncate(fd, size)
                    except OSError:
                        pass
                    raise
                return
            finally:
                os.close(fd)  # closing drops the flock
        raise OSError(errno.EAGAIN, f"{self.path} kept being rotated by other writers", self.path)


class _FileWriter:
    """Shared export plumbing: encode, write, never raise, warn once per kind."""

    def __init__(self, signal: str, filename: str, directory: str | None, max_bytes: int | None) -> None:
        if directory is None or max_bytes is None:
            current = settings()
            directory = current.file_dir if directory is None else directory
            max_bytes = current.file_max_bytes if max_bytes is None else max_bytes
        self.signal = signal
        self.file = _JsonLinesFile(os.fspath(directory), filename, max_bytes)
        self.shut_down = False

    @property
    def path(self) -> str:
        return self.file.path

    def export(self, encoder: Callable[[Any], Message], data: Any, skip: Callable[[Message], bool] | None = None) -> bool:
        """Encode ``data`` as an OTLP request and append it as one JSON line; whether it was written (or
        ``skip`` said the request holds nothing to write). Never raises: a failure to encode is said once
        (:mod:`agentwatch.distro.guard`), each kind of write failure once."""
        with guard(f"encoding {self.signal} as OTLP JSON for {self.file.path}", "such batches are dropped") as encoding:
            request = encoder(data)
            if skip is not None and skip(request):
                return True
            if self.shut_down:
                return False
            line = to_otlp_json(request)
        if encoding.error is not None:
            return False
        try:
            self.file.append(line)
        except OSError as exc:
            kind = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            warn_once(
                f"file_exporter:{self.signal}:{kind}",
                f"cannot write {self.signal} to {self.file.path}: {exc.strerror or exc}; "
                f"{self.signal} are being dropped (set AGENTWATCH_FILE_DIR to a writable directory)",
            )
            return False
        return True


class OTLPJsonFileSpanExporter(SpanExporter):
    """Writes each span batch as one ``ExportTraceServiceRequest`` line to ``traces.jsonl``."""

    def __init__(self, directory: str | None = None, max_bytes: int | None = None, **_ignored: Any) -> None:
        self._writer = _FileWriter("traces", TRACES_FILE, directory, max_bytes)

    @property
    def path(self) -> str:
        return self._writer.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        if not self._writer.export(encode_spans, spans):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._writer.shut_down = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class OTLPJsonFileMetricExporter(MetricExporter):
    """Writes each collection as one ``ExportMetricsServiceRequest`` line to ``metrics.jsonl``.

    Temporality is cumulative for every instrument kind (what Prometheus and
    ``agentwatch report`` expect: the latest point of a series is its total).
    """

    def __init__(self, directory: str | None = None, max_bytes: int | None = None, **_ignored: Any) -> None:
        super().__init__(preferred_temporality=dict(_CUMULATIVE), preferred_aggregation=None)
        self._writer = _FileWriter("metrics", METRICS_FILE, directory, max_bytes)

    @property
    def path(self) -> str:
        return self._writer.path

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        if metrics_data is None or not metrics_data.resource_metrics:
            return MetricExportResult.SUCCESS
        # Nothing left once encoded (no data points): nothing to write, and no failure.
        if not self._writer.export(encode_metrics, metrics_data, skip=lambda request: not request.resource_metrics):  # pyright: ignore[reportAttributeAccessIssue] - the encoder's request type
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._writer.shut_down = True


class OTLPJsonFileLogExporter(LogRecordExporter):
    """Writes each log batch as one ``ExportLogsServiceRequest`` line to ``logs.jsonl``."""

    def __init__(self, directory: str | None = None, max_bytes: int | None = None, **_ignored: Any) -> None:
        self._writer = _FileWriter("logs", LOGS_FILE, directory, max_bytes)

    @property
    def path(self) -> str:
        return self._writer.path

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if not batch:
            return LogRecordExportResult.SUCCESS
        if not self._writer.export(encode_logs, batch):
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        self._writer.shut_down = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
