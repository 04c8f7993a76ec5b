"""The metrics of the web layer (names, units and attributes listed here and in the README).

| Metric | Type | Unit | Attributes |
|---|---|---|---|
| `agentwatch.health.check.status` | gauge | `{status}` | `agentwatch.health.check.name` — 1 healthy, 0.5 degraded, 0 unhealthy, set at each run |
| `agentwatch.health.check.duration` | histogram | `s` | `agentwatch.health.check.name`, `agentwatch.health.check.status` — each run (cache hits are not runs) |
| `agentwatch.http.server.errors` | counter | `{error}` | `error.type` (exception class), `http.route` (template), `http.request.method` — unhandled exceptions answered 500 |

Attribute values are bounded: check names come from the configuration and
code, routes are templates, error types are class names.
"""

from __future__ import annotations

import threading
from typing import Any

CHECK_NAME = "agentwatch.health.check.name"
CHECK_STATUS = "agentwatch.health.check.status"
STATUS_VALUE = {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0}
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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
            _instruments["status"] = meter.create_gauge(
                "agentwatch.health.check.status",
                unit="{status}",
                description="Latest result of each health check: 1 healthy, 0.5 degraded, 0 unhealthy.",
            )
            _instruments["duration"] = meter.create_histogram(
                "agentwatch.health.check.duration",
                unit="s",
                description="Duration of each health check run.",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )
            _instruments["errors"] = meter.create_counter(
                "agentwatch.http.server.errors",
                unit="{error}",
                description="Unhandled exceptions in routes, answered with a 500, by exception type and route.",
            )
    return _instruments


def record_check(name: str, status: str, seconds: float) -> None:
    try:
        instruments = _get()
        instruments["status"].set(STATUS_VALUE.get(status, 0.0), {CHECK_NAME: name})
        instruments["duration"].record(seconds, {CHECK_NAME: name, CHECK_STATUS: status})
    except Exception:  # noqa: BLE001,S110 - telemetry never breaks a probe
        pass


def record_error(error_type: str, route: str | None, method: str | None) -> None:
    attributes = {"error.type": error_type}
    if route:
        attributes["http.route"] = route
    if method:
        attributes["http.request.method"] = method
    try:
        _get()["errors"].add(1, attributes)
    except Exception:  # noqa: BLE001,S110
        pass


def _reset_for_tests() -> None:
    with _lock:
        _instruments.clear()
