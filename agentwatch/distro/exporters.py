"""Exporters chosen by name, the standard way, without ever aborting the setup.

Names come from ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` and resolve through the
SDK's exporter entry-point groups, like the stock configurator; ``otlp`` maps to
``otlp_proto_grpc`` or ``otlp_proto_http`` by protocol and ``prometheus`` to
agentwatch's multi-worker reader. Unlike the stock configurator, an unknown
name or a missing package costs only that exporter (one warning line).

Every exporter is wrapped in a guard that never raises into the SDK, counts
what could not be delivered, and replaces the upstream exporters' retry
warnings (one per failed batch) with one line per endpoint naming it and the fix.
The guard is also where PII and secrets are removed: it hands the inner exporter
scrubbed copies of the spans, log records and metric points (``scrub/``),
so every exporter, whatever its name, only ever sees scrubbed data.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricReader
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util._importlib_metadata import entry_points

from agentwatch.distro import endpoints
from agentwatch.distro._diagnostics import info, warn_once
from agentwatch.distro.guard import guard, run
from agentwatch.distro.scrub import Scrubber, scrubber_for
from agentwatch.distro.settings import Settings

_GROUPS = {
    "traces": "opentelemetry_traces_exporter",
    "metrics": "opentelemetry_metrics_exporter",
    "logs": "opentelemetry_logs_exporter",
}
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
_QUIETED_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
_RETRY_NOISE = ("Transient error", "Failed to export", "Shutdown in progress", "already shutdown")


@functools.cache
def _installed(signal: str) -> Mapping[str, Any]:
    """The signal's exporter entry points by name, scanned once per process (not once per call)."""
    return {ep.name: ep for ep in entry_points(group=_GROUPS[signal])}


FILE_EXPORTER = "agentwatch_file"  # agentwatch's local files (AGENTWATCH_EXPORT=local)
FILE_ALIAS = "otlp_json_file"  # the official opentelemetry-exporter-otlp-json-file's name


def resolve_names(signal: str, settings: Settings) -> list[tuple[str, str]]:
    """``[(user_name, entry_point_name)]`` for a signal; bad names are dropped with one warning."""
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    names = settings.exporters.get(signal, [])
    if "none" in names:
        if len(names) > 1:
            warn_once(
                f"config:{variable}:none",
                f"{variable}={','.join(names)!r} mixes 'none' with exporters; using 'none' (no {signal} exported)",
            )
        return []
    installed = _installed(signal)
    resolved: list[tuple[str, str]] = []
    for name in dict.fromkeys(names):  # keep order, drop duplicates
        target = _OTLP_BY_PROTOCOL[settings.protocols[signal]] if name == "otlp" else name
        if name == FILE_ALIAS and FILE_ALIAS not in installed:
            # The official package's name, which agentwatch's exporter had before it took its own: kept
            # working for agentwatch's where that package is not installed (with it, the name is its).
            target = FILE_EXPORTER
        if name == "prometheus" and signal == "metrics":
            resolved.append((name, name))  # agentwatch's own reader, see build_metric_readers
            continue
        if target not in installed:
            known = sorted({"otlp", *installed} - set(_OTLP_BY_PROTOCOL.values()))
            reason = (
                f"its package is not installed (entry point {target!r} missing)"
                if name in ("otlp", "console", "prometheus") or name.startswith("otlp_")
                else f"no such exporter (installed: {', '.join(known)})"
            )
            resolved_names = [n for n in names if n != name]
            warn_once(
                f"config:{variable}:{name}",
                f"{variable}={','.join(names)!r}: exporter {name!r} is unavailable, {reason}; "
                f"using {','.join(resolved_names) or 'none'!r} instead",
            )
            continue
        resolved.append((name, target))
    return resolved


def _load(signal: str, target: str) -> type:
    return _installed(signal)[target].load()


def _instantiate(cls: type, endpoint: str | None) -> Any:
    """The exporter of a loaded entry point; the OTLP ones get their validated endpoint explicitly."""
    exporter = cls() if endpoint is None else cls(endpoint=endpoint)
    _bound_session_timeouts(exporter)
    return exporter


_DEADLINE_PASSED = "the export deadline passed before this attempt"


def _bound_session_timeouts(exporter: Any) -> None:
    """Make a spent export deadline a timeout, not a crash, in OTLP/HTTP exporters that post through
    ``self._session`` (opentelemetry-exporter-otlp-proto-http before 1.45).

    Their retry loop checks that a back-off fits before the deadline, waits, then posts with
    ``deadline - time()``; when the wait overshoots, that is negative and urllib3 raises
    ``ValueError`` (not a ``RequestException``) out of the exporter. Raised as
    ``requests.exceptions.Timeout`` instead, the exporter reports the batch as failed, as for any
    timeout. Later versions clamp the timeout themselves and have no ``_session``.
    """
    session = getattr(exporter, "_session", None)
    if session is None or "post" in vars(session):
        return
    try:
        import requests  # only the requests-based exporters get here
    except ImportError:  # pragma: no cover - such an exporter imported it already
        return
    if not isinstance(session, requests.Session):
        return
    post = session.post

    def bounded_post(*args: Any, timeout: Any = None, **kwargs: Any) -> Any:
        if isinstance(timeout, (int, float)) and timeout <= 0:
            raise requests.exceptions.Timeout(_DEADLINE_PASSED)
        return post(*args, timeout=timeout, **kwargs)

    session.post = bounded_post  # type: ignore[method-assign]


# A collector answering 429 / RESOURCE_EXHAUSTED is up but shedding load: pointing elsewhere is the wrong fix.
_THROTTLED = ("Too Many Requests", "HTTP 429", "RESOURCE_EXHAUSTED")
_THROTTLED_FIX = (
    "It is throttling (rate limit or memory limiter): give it more capacity, or send less "
    "(e.g. OTEL_TRACES_SAMPLER=parentbased_traceidratio)."
)


class ExportHealth:
    """Delivery state of one destination: warns once when it fails, once when it recovers."""

    def __init__(self, destination: str, fix: str):
        self.destination = destination
        self.fix = fix
        self.dropped: dict[str, int] = {}
        self.failing = False
        self._lock = threading.Lock()

    def record(self, signal: str, ok: bool, items: int, error: str = "") -> None:
        with self._lock:
            if ok:
                recovered = self.failing
                self.failing = False
            else:
                recovered = False
                first = not self.failing
                self.failing = True
                self.dropped[signal] = self.dropped.get(signal, 0) + items
        if not ok and first:
            fix = _THROTTLED_FIX if any(marker in error for marker in _THROTTLED) else self.fix
            unreachable(self.destination, [signal], error or "export failed", fix)
        if recovered:
            info(
                f"{self.destination} answers again; {self.dropped_summary()} could not be delivered while it was down"
            )

    def dropped_summary(self) -> str:
        with self._lock:
            parts = [f"{count} {signal} items" for signal, count in sorted(self.dropped.items())]
        return ", ".join(parts) or "nothing"


def unreachable(destination: str, signals: list[str], error: str, fix: str) -> None:
    """The one line a user sees when a destination cannot be reached (shared with the start-up probe)."""
    warn_once(
        f"unreachable:{destination}",
        f"cannot export {'/'.join(signals)} to {destination} ({error}). The app is not affected; "
        f"telemetry is retried, then dropped, until it answers. {fix}",
    )


_health: dict[str, ExportHealth] = {}
_health_lock = threading.Lock()


def health_for(destination: str, fix: str) -> ExportHealth:
    with _health_lock:
        if destination not in _health:
            _health[destination] = ExportHealth(destination, fix)
        return _health[destination]


def all_health() -> list[ExportHealth]:
    with _health_lock:
        return list(_health.values())


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _short_reason(value: Any) -> str:
    """A few words for the warning line: ``Too Many Requests``, ``RESOURCE_EXHAUSTED``, ``Connection refused``."""
    name = getattr(value, "name", None)  # a grpc.StatusCode
    text = name if isinstance(name, str) else str(value)
    errno = _ERRNO.search(text)
    return (errno.group(1).strip() if errno else text)[:160]


class _RetryNoiseFilter(logging.Filter):
    """Drops the upstream OTLP exporters' per-batch retry lines; ``ExportHealth`` says it once.

    The reason they give (an HTTP reason phrase such as ``Too Many Requests``, a gRPC status such
    as ``RESOURCE_EXHAUSTED``, ``Connection refused``) is kept for the exporting thread, so that
    one line can tell a throttling collector from one that is down.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if not any(noise in message for noise in _RETRY_NOISE):
            return True
        try:
            args = record.args if isinstance(record.args, tuple) else ()
            if message.startswith("Transient error") and args:
                self._local.reason = _short_reason(args[0])
            elif message.startswith("Failed to export") and "batch code:" in message and len(args) >= 2:
                # HTTP: (kind, status, reason); opentelemetry-exporter-otlp-proto-http 1.44 logs (status, reason)
                # and fails a timed-out request at once instead of retrying it until the deadline.
                http_status, reason = args[-2], args[-1]
                if http_status is None and str(reason) == _DEADLINE_PASSED:
                    # Retried until the deadline: the last answer (a 503...) says why, if there was one.
                    self._local.reason = getattr(self._local, "reason", "") or "no answer within OTEL_EXPORTER_OTLP_TIMEOUT"
                elif http_status is None and "Timeout" in type(reason).__name__:  # requests' ReadTimeout & co.
                    self._local.reason = "no answer within OTEL_EXPORTER_OTLP_TIMEOUT"
                else:
                    self._local.reason = f"HTTP {http_status}: {_short_reason(reason)}" if http_status else _short_reason(reason)
            elif message.startswith("Failed to export") and "code:" in message and len(args) >= 3:
                # gRPC: (kind, endpoint, code, details)
                self._local.reason = _short_reason(args[2])
                if len(args) >= 4 and "larger than max" in str(args[3]):
                    self._local.reason += ": received message larger than max"
            elif "due to timeout" in message and not getattr(self._local, "reason", ""):
                # The first attempt used up the whole deadline: the endpoint accepted and never answered.
                self._local.reason = "no answer within OTEL_EXPORTER_OTLP_TIMEOUT"
        except Exception:  # noqa: BLE001,S110 - the reason is a nicety; the line is dropped either way
            pass
        return False

    def take_reason(self) -> str:
        """The last reason an upstream exporter gave on this thread (then forgotten), or ``""``."""
        reason = getattr(self._local, "reason", "")
        self._local.reason = ""
        return reason


_noise_filter = _RetryNoiseFilter()


_QUEUE_LOGGER = "opentelemetry.sdk._shared_internal"  # the SDK's BatchProcessor behind BSP and BLRP
_QUEUE_VARIABLES = {"span": "OTEL_BSP_MAX_QUEUE_SIZE", "log": "OTEL_BLRP_MAX_QUEUE_SIZE"}


class _QueueDropCounter(logging.Filter):
    """Counts items the SDK batch processors drop because their queue is full.

    The SDK logs ``Queue full, dropping Span.`` once per dropped item, into the
    root logger (where the OpenTelemetry log handler would export it: a log
    storm that feeds the full log queue). This filter swallows those lines,
    counts them, and says it once; the total is reported at exit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Queue full"):
            return True
        what = str(record.args[0]).lower() if isinstance(record.args, tuple) and record.args else "item"
        with self._lock:
            self.counts[what] = self.counts.get(what, 0) + 1
        variable = _QUEUE_VARIABLES.get(what, "the queue size")
        warn_once(
            f"queue-full:{what}",
            f"the {what} export queue is full ({variable}): new {what}s are dropped and counted until the "
            f"exporter catches up (the total is reported at exit). The app is not affected.",
        )
        return False

    def summary(self) -> str:
        with self._lock:
            return ", ".join(f"{count} {what}s" for what, count in sorted(self.counts.items()))


queue_drops = _QueueDropCounter()


def report_queue_drops() -> None:
    """One line at exit with what the full queues dropped (nothing when nothing was)."""
    summary = queue_drops.summary()
    if summary:
        warn_once("queue-full:total", f"at exit, {summary} had been dropped because the export queue was full")


def quiet_upstream_retry_logs() -> None:
    for name in _QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if _noise_filter not in logger.filters:
            # First: the SDK's DuplicateFilter on these loggers drops repeats of a line before later
            # filters see them, and the reason of every failed batch is needed (a split too-large batch
            # fails the same way several times in a row).
            logger.filters.insert(0, _noise_filter)
    queue_logger = logging.getLogger(_QUEUE_LOGGER)
    if queue_drops not in queue_logger.filters:
        # First: the SDK's own DuplicateFilter on this logger lets only the first line of a run through.
        queue_logger.filters.insert(0, queue_drops)


def destination_down(exporter: Any) -> bool:
    """Whether a guarded exporter's destination is known to be failing right now."""
    health = getattr(exporter, "health", None)
    return bool(health is not None and health.failing)


_NOT_DELIVERED = "the batch counts as not delivered"

# What receivers answer for a request over their size limit: HTTP 413 (a collector's max_request_body_size,
# a proxy's body limit), a gRPC server's "received message larger than max".
_TOO_LARGE = ("HTTP 413", "Too Large", "larger than max")
too_large: dict[str, int] = {}  # records dropped because a receiver refused them as too large, by signal
_too_large_lock = threading.Lock()


def _too_large(reason: str) -> bool:
    return any(marker in reason for marker in _TOO_LARGE)


def report_too_large() -> None:
    """One line at exit with the records dropped as too large (nothing when none were)."""
    with _too_large_lock:
        summary = ", ".join(f"{count} {signal} records" for signal, count in sorted(too_large.items()))
    if summary:
        warn_once("too-large:total", f"at exit, {summary} had been dropped because a receiver refused them as too large")
_FLUSH_FAILED = "the flush counts as failed"


class _Guarded:
    """What the guarded exporters share: the inner exporter exports, flushes and shuts down without ever
    raising into the SDK (:mod:`agentwatch.distro.guard`: a fault is said once per exporter and call)."""

    name: str
    inner: Any

    def _guarded(self, call: str, failed: Any, outcome: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, or ``failed`` (what the SDK gets for a failure) if it raises."""
        return run(f"exporter {self.name!r} {call}", function, *args, default=failed, outcome=outcome, **kwargs)

    def _export(self, signal: str, scrub: Any, items: Sequence[Any], count: int, success: Any, failure: Any, **kwargs: Any) -> Any:
        """Scrub (a failure drops the batch: never exported unscrubbed), export, record the outcome for
        the destination's health line; never raises. ``count``: the items the batch stands for."""
        batch = items
        if scrub is not None:
            with guard(f"scrubbing {signal} for exporter {self.name!r}",
                       "those batches are dropped rather than exported unscrubbed", type_only=True) as scrubbing_step:
                batch = scrub(items)
            # Could not be scrubbed (said by the guard or by the scrubber, which drops what it cannot
            # scrub): nothing is exported, and it is not the destination's fault, so its health record
            # is left alone.
            if scrubbing_step.error is not None or batch is None:
                return failure
        return self._deliver(signal, batch, count, success, failure, splittable=signal != "metrics", **kwargs)

    def _deliver(self, signal: str, batch: Any, count: int, success: Any, failure: Any, splittable: bool,
                 **kwargs: Any) -> Any:
        """Export one (scrubbed) batch; a batch the receiver refuses as too large is split in halves and
        each half sent, down to the one record that is too large alone, which is dropped and counted:
        one oversized log line costs only itself, and the destination is not reported as down for it."""
        _noise_filter.take_reason()
        result = self._guarded("export", failure, _NOT_DELIVERED, self.inner.export, batch, **kwargs)
        reason = _noise_filter.take_reason()
        health = getattr(self, "health", None)
        if result is not success and splittable and _too_large(reason):
            if health is not None:
                health.record(signal, True, 0)  # it answered: up, whatever it thought of the size
            if len(batch) == 1:
                self._too_large(signal, reason)
                return failure
            middle = len(batch) // 2
            results = [self._deliver(signal, part, len(part), success, failure, splittable, **kwargs)
                       for part in (batch[:middle], batch[middle:])]
            return success if all(r is success for r in results) else failure
        if health is not None:
            health.record(signal, result is success, count, reason)
        return result

    def _too_large(self, signal: str, reason: str) -> None:
        with _too_large_lock:
            too_large[signal] = too_large.get(signal, 0) + 1
        destination = getattr(getattr(self, "health", None), "destination", None) or f"exporter {self.name!r}"
        warn_once(
            f"too-large:{destination}:{signal}",
            f"{destination} refused a {signal} record as too large ({reason}): that record is dropped and counted, "
            f"the rest of its batch delivered. Raise the receiver's request size limit (a proxy's body size limit, "
            f"the collector's max_request_body_size / max_recv_msg_size_mib), or log less per record.",
        )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._guarded("force_flush", False, _FLUSH_FAILED, self.inner.force_flush, timeout_millis)

    def shutdown(self) -> None:
        self._guarded("shutdown", None, "continuing", self.inner.shutdown)


class GuardedSpanExporter(_Guarded, SpanExporter):
    """Never raises into the span processor; scrubs what it exports; reports failures once per destination."""

    def __init__(
        self, name: str, inner: SpanExporter, health: ExportHealth | None, scrubber: Scrubber | None = None
    ):
        self.name, self.inner, self.health, self.scrubber = name, inner, health, scrubber

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        scrub = None if self.scrubber is None else self.scrubber.scrub_spans
        return self._export("traces", scrub, spans, len(spans), SpanExportResult.SUCCESS, SpanExportResult.FAILURE)


class GuardedLogExporter(_Guarded, LogRecordExporter):
    def __init__(
        self,
        name: str,
        inner: LogRecordExporter,
        health: ExportHealth | None,
        scrubber: Scrubber | None = None,
    ):
        self.name, self.inner, self.health, self.scrubber = name, inner, health, scrubber

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        scrub = None if self.scrubber is None else self.scrubber.scrub_logs
        return self._export("logs", scrub, batch, len(batch), LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE)


class GuardedMetricExporter(_Guarded, MetricExporter):
    def __init__(
        self,
        name: str,
        inner: MetricExporter,
        health: ExportHealth | None,
        scrubber: Scrubber | None = None,
    ):
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.name, self.inner, self.health, self.scrubber = name, inner, health, scrubber

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        scrub = None if self.scrubber is None else self.scrubber.scrub_metrics_safely
        points = sum(
            len(metric.data.data_points)
            for rm in getattr(metrics_data, "resource_metrics", [])
            for sm in rm.scope_metrics
            for metric in sm.metrics
        ) if self.health is not None else 0
        return self._export(
            "metrics", scrub, metrics_data, points, MetricExportResult.SUCCESS, MetricExportResult.FAILURE,
            timeout_millis=timeout_millis, **kwargs,
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._guarded("force_flush", False, _FLUSH_FAILED, self.inner.force_flush, timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        # The retry without a timeout is guarded too (it used to run outside the try and could raise into the SDK).
        self._guarded("shutdown", None, "continuing", self._shutdown_inner, timeout_millis, kwargs)

    def _shutdown_inner(self, timeout_millis: float, kwargs: dict[str, Any]) -> None:
        try:
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
        except TypeError:  # a metric exporter whose shutdown() takes no timeout
            self.inner.shutdown()


_created: list[Any] = []


def created() -> list[Any]:
    """Every guarded exporter built in this process (shut first at exit when their destination is down)."""
    return list(_created)


_GUARDS = {"traces": GuardedSpanExporter, "metrics": GuardedMetricExporter, "logs": GuardedLogExporter}


_PROTOCOL_OF_TARGET = {target: protocol for protocol, target in _OTLP_BY_PROTOCOL.items()}


def otlp_protocol_of(target: str) -> str | None:
    """``grpc`` / ``http/protobuf`` for the upstream OTLP exporter entry points, None for others."""
    return _PROTOCOL_OF_TARGET.get(target)


def otlp_endpoint_for(signal: str, target: str, settings: Settings, environ) -> str | None:
    """The validated endpoint an upstream OTLP exporter entry point is given, or None for other exporters.

    Passed explicitly because the upstream exporters would otherwise read the variables again
    themselves, bad values included (an unusable value falls back only if we hand over the fallback).
    """
    protocol = _PROTOCOL_OF_TARGET.get(target)
    if protocol is None:
        return None
    if protocol == settings.protocols.get(signal) and signal in settings.otlp_endpoints:
        return settings.otlp_endpoints[signal]
    # OTEL_*_EXPORTER named the other protocol's exporter (otlp_proto_grpc under http/protobuf...).
    return endpoints.otlp_endpoint(signal, protocol, environ)[0]


def otlp_destination(endpoint: str) -> tuple[str, str]:
    """The destination text of an OTLP endpoint (one per collector: the key of its ``health_for`` record,
    shared by the exporters and the start-up probe) and the fix to print when it cannot be reached."""
    return (
        f"the OTLP collector at {endpoints.origin(endpoint)}",
        "Point OTEL_EXPORTER_OTLP_ENDPOINT at your collector, or set AGENTWATCH_EXPORT=local "
        "to write local files instead.",
    )


def _destination(name: str, endpoint: str | None, settings: Settings) -> tuple[str | None, str]:
    """Where an exporter sends (for messages), and the fix to print when it cannot; ``endpoint``: what
    :func:`otlp_endpoint_for` gave it."""
    if endpoint is not None:
        return otlp_destination(endpoint)
    if name == FILE_EXPORTER or (name == FILE_ALIAS and FILE_ALIAS not in _installed("traces")):
        return f"the directory {settings.file_dir}", "Check AGENTWATCH_FILE_DIR is writable."
    return None, ""


def build_exporters(signal: str, settings: Settings, environ) -> list[Any]:
    """Instantiated, guarded exporters for ``traces`` or ``logs`` (never raises)."""
    exporters = []
    for name, target in resolve_names(signal, settings):
        # One bad exporter must not cost the others.
        with guard(_creating(signal, name), _SKIPPED) as creating:
            endpoint = otlp_endpoint_for(signal, target, settings, environ)
            inner = _instantiate(_load(signal, target), endpoint)
        if creating.error is not None:
            continue
        destination, fix = _destination(name, endpoint, settings)
        health = health_for(destination, fix) if destination else None
        exporters.append(_GUARDS[signal](name, inner, health, scrubber_for(settings)))
        _created.append(exporters[-1])
    return exporters


_SKIPPED = "skipping it"


def _creating(signal: str, name: str) -> str:
    """The step that builds one exporter, as its warning names it."""
    return f"creating the {signal} exporter {name!r} (OTEL_{signal.upper()}_EXPORTER)"


def build_metric_readers(settings: Settings, environ, export_interval_ms: float | None = None) -> list[MetricReader]:
    """Metric readers: push exporters behind a periodic reader, ``prometheus`` as a pull reader (never raises)."""
    readers: list[MetricReader] = []
    scrubber = scrubber_for(settings)
    for name, target in resolve_names("metrics", settings):
        reader = run(_creating("metrics", name), _metric_reader, name, target, settings, environ, scrubber,
                     export_interval_ms, outcome=_SKIPPED)
        if reader is not None:
            readers.append(reader)
    return readers


def _metric_reader(
    name: str,
    target: str,
    settings: Settings,
    environ,
    scrubber: Scrubber | None,
    export_interval_ms: float | None,
) -> MetricReader:
    """The reader of one ``OTEL_METRICS_EXPORTER`` name (a push exporter behind a periodic reader)."""
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    if name == "prometheus":
        from agentwatch.distro.prometheus import create_prometheus_reader

        return create_prometheus_reader(settings.prometheus_host, settings.prometheus_port, scrubber=scrubber)
    loaded = _load("metrics", target)
    if isinstance(loaded, type) and issubclass(loaded, MetricReader):
        return scrub_pull_reader(loaded(), scrubber)
    endpoint = otlp_endpoint_for("metrics", target, settings, environ)
    destination, fix = _destination(name, endpoint, settings)
    health = health_for(destination, fix) if destination else None
    exporter = GuardedMetricExporter(name, _instantiate(loaded, endpoint), health, scrubber)
    _created.append(exporter)
    return PeriodicExportingMetricReader(exporter, export_interval_millis=export_interval_ms)


def scrub_pull_reader(reader: MetricReader, scrubber: Scrubber | None) -> MetricReader:
    """Make a pull ``MetricReader`` (an installed reader entry point) receive scrubbed collections.

    ``MetricReader.collect()`` hands each collection to ``_receive_metrics``; the reader
    builds what it serves from that, so scrubbing there covers whatever it exposes.
    """
    if scrubber is None:
        return reader
    receive = reader._receive_metrics

    def _receive_scrubbed(metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        scrubbed = scrubber.scrub_metrics_safely(metrics_data)
        if scrubbed is not None:
            receive(scrubbed, timeout_millis=timeout_millis, **kwargs)

    reader._receive_metrics = _receive_scrubbed  # type: ignore[method-assign]
    return reader
