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
