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
