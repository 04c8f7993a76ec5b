"""The exporter guards: whatever the wrapped exporter does, nothing raises into the SDK."""

from __future__ import annotations

from agentwatch.distro import _diagnostics


class _NoTimeoutShutdown:
    """A metric exporter whose shutdown() takes no timeout and then fails."""

    _preferred_temporality: dict = {}
    _preferred_aggregation: dict = {}

    def __init__(self) -> None:
        self.calls = 0

    def shutdown(self) -> None:
        self.calls += 1
        raise RuntimeError("shutdown failed")


def test_a_metric_exporter_shutdown_retry_never_raises_into_the_sdk(lenient):
    """The retry without ``timeout_millis`` (after a TypeError) ran outside the guard and raised."""
    from agentwatch.distro import exporters

    inner = _NoTimeoutShutdown()
    exporters.GuardedMetricExporter("flaky", inner, None).shutdown(timeout_millis=10)
    exporters.GuardedMetricExporter("flaky", inner, None).shutdown(timeout_millis=10)
    assert inner.calls == 2
    # Said once, naming the exporter and the call, with the error.
    assert _diagnostics.messages() == [
        "exporter 'flaky' shutdown failed (RuntimeError('shutdown failed')); continuing. The app is not affected (said once)"
    ]


def test_a_batch_the_scrubber_drops_is_not_blamed_on_the_destination():
    """scrub_metrics_safely returns None for a collection it could not scrub: nothing is exported, and the
    destination is not marked down (it would print 'cannot export ... to <collector>' and count drops there)."""
    from opentelemetry.sdk.metrics.export import MetricExportResult

    from agentwatch.distro import exporters

    class _DropAll:
        def scrub_metrics_safely(self, _data):
            return None

    class _Inner:
        _preferred_temporality: dict = {}
        _preferred_aggregation: dict = {}
        exported = 0

        def export(self, *_args, **_kwargs):
            self.exported += 1
            return MetricExportResult.SUCCESS

    inner, health = _Inner(), exporters.ExportHealth("the OTLP collector at test", "fix it")
    guarded = exporters.GuardedMetricExporter("otlp", inner, health, _DropAll())
    assert guarded.export(object()) is MetricExportResult.FAILURE
    assert inner.exported == 0
    assert not health.failing and health.dropped == {}
    assert not [m for m in _diagnostics.messages() if "cannot export" in m]


def _span_batch() -> list:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("s").end()
    return list(memory.get_finished_spans())


def test_a_retry_that_overshoots_the_export_deadline_is_a_failed_batch_not_a_crash(monkeypatch):
    """opentelemetry-exporter-otlp-proto-http 1.44 checks that a back-off fits before its deadline, waits,
    then posts with ``deadline - time()``: a wait that overshoots made that negative and urllib3 raised
    ValueError out of the exporter (a flaky Traceback in the fault suite). Here the clock jumps past the
    deadline during the back-off against a real 503 receiver: the batch fails with the 503 as its reason,
    and nothing raises (the suite's strict guard would re-raise it)."""
    import pytest
    from opentelemetry.sdk.trace.export import SpanExportResult
    from otlp_receiver import OTLPReceiver

    from agentwatch.distro import exporters

    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    with OTLPReceiver(protocol="http") as rx:
        rx.set_mode("unavailable", retry_after=None)
        inner = exporters._instantiate(trace_exporter.OTLPSpanExporter, rx.endpoint_for("traces"))
        if getattr(inner, "_session", None) is None:
            pytest.skip("this exporter version bounds its own timeout (no requests session of its own)")
        started = trace_exporter.time()
        ticks = iter([started, started, started])  # the deadline, the first post, the back-off check
        monkeypatch.setattr(trace_exporter, "time", lambda: next(ticks, started + inner._timeout + 0.01))
        monkeypatch.setattr(trace_exporter.random, "uniform", lambda *_a: 0.001)  # a short real back-off
        exporters.quiet_upstream_retry_logs()  # what the configurator does: the reason comes from these lines
        health = exporters.ExportHealth("the OTLP collector at test", "fix it")
        guarded = exporters.GuardedSpanExporter("otlp", inner, health)
        assert guarded.export(_span_batch()) is SpanExportResult.FAILURE
        assert rx.requests["traces"] == 1  # the second attempt was not sent: its deadline had passed
    assert health.failing and health.dropped == {"traces": 1}
    assert any("(Service Unavailable)" in m for m in _diagnostics.messages()), _diagnostics.messages()


def test_the_deadline_guard_leaves_a_live_timeout_alone():
    """A positive timeout reaches requests unchanged (the guard only turns a spent deadline into Timeout)."""
    import pytest

    from agentwatch.distro import exporters

    requests = pytest.importorskip("requests")
    seen: list = []

    class _Exporter:
        def __init__(self) -> None:
            self._session = requests.Session()

    exporter = _Exporter()
    monkey = exporter._session
    monkey.request = lambda *a, **k: seen.append(k.get("timeout"))  # type: ignore[method-assign]
    exporters._bound_session_timeouts(exporter)
    exporter._session.post("http://127.0.0.1:9/", timeout=2.5)
    assert seen == [2.5]
    with pytest.raises(requests.exceptions.Timeout):
        exporter._session.post("http://127.0.0.1:9/", timeout=-0.004)
    assert seen == [2.5]
    exporters._bound_session_timeouts(exporter)  # a second wrap is not stacked
    exporter._session.post("http://127.0.0.1:9/", timeout=1)
    assert seen == [2.5, 1]
