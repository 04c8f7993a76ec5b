"""The metrics of the web layer, built from their catalogue entries in ``agentwatch.semconv.WEB_METRICS``.

Attribute values are bounded: check names come from the configuration and
code, routes are templates, error types are class names.
"""

from __future__ import annotations

import threading
from typing import Any

from agentwatch import semconv as sc
from agentwatch.distro.guard import guarded
from agentwatch.semconv import HEALTH_CHECK_NAME as CHECK_NAME
from agentwatch.semconv import HEALTH_CHECK_STATUS as CHECK_STATUS
from agentwatch.semconv import WEB_METRICS, create_instruments

STATUS_VALUE = {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0}

_lock = threading.Lock()
_instruments: dict[str, Any] = {}
_meter_provider: Any = None


def use_meter_provider(provider: Any) -> None:
    """Use ``provider`` (the instrumentor's ``meter_provider=`` kwarg) instead of the global one."""
    global _meter_provider  # noqa: PLW0603
    with _lock:
        _meter_provider = provider
        _instruments.clear()


def _get() -> dict[str, Any]:
    if _instruments:
        return _instruments
    with _lock:
        if not _instruments:
            from opentelemetry import metrics

            from agentwatch.version import __version__

            meter = metrics.get_meter("agentwatch.web", __version__, meter_provider=_meter_provider)
            built = create_instruments(meter, WEB_METRICS)
            _instruments.update(
                status=built["agentwatch.health.check.status"],
                duration=built["agentwatch.health.check.duration"],
                errors=built["agentwatch.http.server.errors"],
            )
    return _instruments


@guarded("web layer: health check metrics", outcome="check results are not recorded as metrics")
def record_check(name: str, status: str, seconds: float) -> None:
    """Record one check's result (never raises: telemetry never breaks a probe)."""
    instruments = _get()
    instruments["status"].set(STATUS_VALUE.get(status, 0.0), {CHECK_NAME: name})
    instruments["duration"].record(seconds, {CHECK_NAME: name, CHECK_STATUS: status})


def record_error(error_type: str, route: str | None, method: str | None) -> None:
    """Count one unhandled exception (the error handler calls it under its guard)."""
    attributes = {sc.ERROR_TYPE: error_type}
    if route:
        attributes[sc.HTTP_ROUTE] = route
    if method:
        attributes[sc.HTTP_REQUEST_METHOD] = method
    _get()["errors"].add(1, attributes)

