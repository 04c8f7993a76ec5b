"""The agentwatch SDK configurator: one pipeline for traces, metrics and logs.

Read top to bottom, this is the whole setup. Each step is isolated: a bad
value or a missing exporter package costs that value or that exporter, never
the rest of the pipeline (the stock configurator raises and leaves the app
with no telemetry at all).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._configuration import _BaseConfigurator
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agentwatch.distro import _diagnostics, endpoints, exporters, lean_metrics, logs, otlp_encoding, rollup, shutdown, tracing
from agentwatch.distro.guard import run
from agentwatch.distro.resource import build_resource, fork_attributes
from agentwatch.distro.scrub.limits import raised
from agentwatch.distro.settings import SIGNALS, Settings
from agentwatch.distro.settings import settings as current_settings


@dataclass
class Pipeline:
    """What :func:`setup` built (kept for ``doctor`` and tests)."""

    settings: Settings
    resource: Resource | None = None
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    exporters: dict[str, list[str]] = field(default_factory=dict)


_pipeline: Pipeline | None = None


def pipeline() -> Pipeline | None:
    """The pipeline of this process, if agentwatch set one up."""
    return _pipeline


def _step(name: str, function, *args: Any) -> Any:
    """Run one setup step; a failure is reported once (``setting up <name> failed ...``) and costs only this step."""
    return run(f"setting up {name}", function, *args)


def _length(limit: int | None, scrub: bool) -> int:
    """An attribute value length limit as the SDK is given it: agentwatch's reading of the variable
    (a bad value was warned about and means no limit), moved ``limits.MARGIN`` further out when the
    scrubber is on, which cuts at the real limit after scrubbing (a cut before scrubbing leaves
    part of a secret: 15 digits of a card)."""
    if limit is None:
        return SpanLimits.UNSET
    return raised(limit) if scrub else limit  # type: ignore[return-value] - not None here


def _span_limits(settings: Settings) -> SpanLimits:
    """The SDK's span limits, the attribute value lengths as :func:`_length` says."""
    scrub = settings.scrub
    return SpanLimits(
        max_attribute_length=_length(scrub.attribute_length, scrub.enabled),
        max_span_attribute_length=_length(scrub.span_attribute_length, scrub.enabled),
    )


def _log_limits(settings: Settings) -> LogRecordLimits:
    """The SDK's log record limits, the attribute value lengths as :func:`_length` says."""
    scrub = settings.scrub
    return LogRecordLimits(
        max_attribute_length=_length(scrub.attribute_length, scrub.enabled),
        max_log_record_attribute_length=_length(scrub.log_attribute_length, scrub.enabled),
    )


# opentelemetry-sdk 1.45 takes the log record limits as an argument; 1.44 (the lowest supported) reads
# them from the environment for every record and has no way to pass them.
_LOGGER_PROVIDER_TAKES_LIMITS = "log_record_limits" in inspect.signature(LoggerProvider.__init__).parameters


def _sdk_reads_log_limits(settings: Settings) -> None:
    """On an SDK that reads the log limits itself: the scrubber still cuts every log attribute at its
    limit after scrubbing, but a length limit set in the environment is applied by the SDK first,
    without agentwatch's margin (a secret across that limit may then be cut before it is scrubbed)."""
    # That SDK reads them again for every record and raises on a value it cannot read: a bad value (warned
    # about by the settings, and read by agentwatch as no limit) would fail every log call of the app.
    for name in _LOG_LENGTH_VARIABLES:
        if name in os.environ and not _sdk_can_read_length(os.environ[name]):
            del os.environ[name]
    scrub = settings.scrub
    if scrub.enabled and any(os.environ.get(name, "").strip() for name in _LOG_LENGTH_VARIABLES):
        _diagnostics.warn_once(
            "log-limits-sdk",
            "this opentelemetry-sdk (< 1.45) cuts log attributes at OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT before the "
            "scrubber sees them (1.45 or newer lets agentwatch scrub first)",
        )


_LOG_LENGTH_VARIABLES = ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT")


def _sdk_can_read_length(value: str) -> bool:
    """Whether opentelemetry-sdk 1.44's log record limits accept ``value`` (``unset`` or a whole number >= 0)."""
    value = value.strip().lower()
    if value == "unset":
        return True
    try:
        return int(value) >= 0
    except ValueError:
        return False


def _tracing(settings: Settings, resource: Resource, built: Pipeline) -> TracerProvider:
    from opentelemetry.sdk._configuration import _get_id_generator, _get_sampler, _import_id_generator, _import_sampler

    sampler = _step("sampler", lambda: _import_sampler(_get_sampler()))
    id_generator = _step("id generator", lambda: _import_id_generator(_get_id_generator()))
    # agentwatch's span path (same SDK classes underneath, same output); AGENTWATCH_LEAN_SPANS=false: the stock one.
    provider_class = tracing.LeanTracerProvider if settings.lean_spans and _lean_spans_supported() else TracerProvider
    provider = provider_class(resource=resource, sampler=sampler, id_generator=id_generator, shutdown_on_exit=False,
                              span_limits=_step("span limits", _span_limits, settings))
    _step("GenAI roll-up", lambda: provider.add_span_processor(rollup.GenAIRollupSpanProcessor()))
    span_exporters = exporters.build_exporters("traces", settings, os.environ)
    for exporter in span_exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    built.exporters["traces"] = [e.name for e in span_exporters]
    trace.set_tracer_provider(provider)
    return provider


def _lean_spans_supported() -> bool:
    """The lean span path mirrors the attribute rules of opentelemetry-sdk >= 1.45; on an older SDK, the stock path."""
    if not tracing.SUPPORTED:
        _diagnostics.info("lean span path not used: this opentelemetry-sdk has no _clean_attribute_value (it needs 1.45 or newer)")
    return tracing.SUPPORTED


def _metrics(settings: Settings, resource: Resource, built: Pipeline) -> MeterProvider:
    if settings.lean_sdk:
        _step("lean metric recording", lean_metrics.install)
    readers = exporters.build_metric_readers(settings, os.environ)
    built.exporters["metrics"] = [type(r).__name__ for r in readers]
    provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    metrics.set_meter_provider(provider)
    return provider


def _logging(settings: Settings, resource: Resource, built: Pipeline) -> LoggerProvider:
    if _LOGGER_PROVIDER_TAKES_LIMITS:
        provider = LoggerProvider(resource=resource, shutdown_on_exit=False,  # pyright: ignore[reportCallIssue] - 1.45+
                                  log_record_limits=_step("log record limits", _log_limits, settings))
    else:
        _step("log record limits", _sdk_reads_log_limits, settings)
        provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    log_exporters = exporters.build_exporters("logs", settings, os.environ)
    for exporter in log_exporters:
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    built.exporters["logs"] = [e.name for e in log_exporters]
    set_logger_provider(provider)
    if settings.log_sdk_handler:
        _step("the SDK's logging handler (OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED)", logs.install_sdk_handler, provider)
    return provider


def _check_endpoints(settings: Settings) -> None:
    """Warn about misconfigured OTLP endpoints now, and probe them in the background."""
    to_probe: dict[str, list[str]] = {}
    for signal in SIGNALS:
        if "otlp" not in settings.exporters.get(signal, []):
            continue
        protocol = settings.protocols[signal]
        # Unusable values were replaced (and warned about) when the settings were read.
        endpoint = settings.otlp_endpoints.get(signal) or endpoints.otlp_endpoint(signal, protocol, os.environ)[0]
        source = settings.otlp_endpoint_sources.get(signal, "default")
        for problem in endpoints.endpoint_mistakes(signal, protocol, endpoint, source, os.environ):
            _diagnostics.warn_once(f"endpoint:{problem}", problem)  # one line when all signals share it
        if endpoints.host_port(endpoint) is not None:  # a unix: socket target is not probed over TCP
            to_probe.setdefault(endpoints.origin(endpoint), []).append(signal)
    if settings.endpoint_check and to_probe:

        def report(endpoint: str, signals: list[str], error: str) -> None:
            destination, fix = exporters.otlp_destination(endpoint)
            exporters.unreachable(destination, signals, error, fix)
            # Mark it failing so recovery is reported once it answers.
            exporters.health_for(destination, fix).failing = True

        endpoints.probe_in_background(to_probe, report)


def _refresh_after_fork(providers: list[Any]) -> None:
    def after_in_child() -> None:
        for provider in providers:
            update = getattr(provider, "_update_resource", None)
            if update is not None:
                run("refreshing the resource after fork", update, fork_attributes(),
                    outcome="this worker's telemetry keeps the parent's process.pid")

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=after_in_child)


def _report_drops() -> None:
    for health in exporters.all_health():
        if health.dropped:
            _diagnostics.warn_once(
                f"dropped:{health.destination}",
                f"at exit, {health.dropped_summary()} had not been delivered to {health.destination}",
            )


def setup(settings: Settings | None = None, auto_instrumentation_version: str | None = None) -> Pipeline:
    """Build and install the providers. Never raises; returns what was built."""
    global _pipeline  # noqa: PLW0603 - one pipeline per process
    if _pipeline is not None:
        _diagnostics.warn_once("setup:twice", "agentwatch is already configured in this process; ignoring the second call")
        return _pipeline
    settings = settings or current_settings()
    built = Pipeline(settings=settings)
    _pipeline = built
    # stdout logging is the app's own output, not telemetry: it follows AGENTWATCH_LOG_FORMAT even with the SDK off.
    _step("log format", logs.configure_output, settings.log_format, settings.log_scrub_console, settings.log_export_level)
    if settings.sdk_disabled:
        _diagnostics.info("OTEL_SDK_DISABLED=true: no telemetry pipeline installed")
        return built

    exporters.quiet_upstream_retry_logs()
    if settings.lean_sdk and any("otlp" in settings.exporters.get(signal, []) for signal in ("traces", "logs")):
        _step("direct OTLP encoding", otlp_encoding.install)
    built.resource = _step("resource", build_resource, settings, auto_instrumentation_version) or Resource.create({})
    built.tracer_provider = _step("tracing", _tracing, settings, built.resource, built)
    built.meter_provider = _step("metrics", _metrics, settings, built.resource, built)
    built.logger_provider = _step("logging", _logging, settings, built.resource, built)
    providers = [p for p in (built.tracer_provider, built.meter_provider, built.logger_provider) if p]
    _step("fork handling", _refresh_after_fork, providers)
    _step("shutdown hooks", _register_shutdown, settings, providers)
    _step("endpoint check", _check_endpoints, settings)
    return built


def _register_shutdown(settings: Settings, providers: list[Any]) -> None:
    shutdown.register(providers, exporters.created(), settings.shutdown_timeout)
    # In this order at exit: what the full queues dropped, then what each destination did not take.
    shutdown.on_shutdown(exporters.report_queue_drops)
    shutdown.on_shutdown(exporters.report_too_large)
    shutdown.on_shutdown(_report_drops)


class AgentwatchConfigurator(_BaseConfigurator):
    """Entry point ``opentelemetry_configurator: agentwatch``."""

    def _configure(self, **kwargs: Any) -> None:
        # Belt and braces: setup() guards each step, but the app must start whatever happens.
        run("agentwatch setup", setup, auto_instrumentation_version=kwargs.get("auto_instrumentation_version"),
            outcome="the app runs with what was set up before the failure")
