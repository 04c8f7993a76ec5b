"""Which layer traces FastAPI apps: agentwatch's (:mod:`agentwatch.web.server`) or the contrib instrumentor.

A light module: the distro asks it before loading instrumentors.
"""

from __future__ import annotations


def stable_http_mode() -> bool:
    """Whether the HTTP instrumentations run in the stable-only mode (``OTEL_SEMCONV_STABILITY_OPT_IN=http``)."""
    from opentelemetry.instrumentation._semconv import (
        _OpenTelemetrySemanticConventionStability,
        _OpenTelemetryStabilitySignalType,
        _StabilityMode,
    )

    _OpenTelemetrySemanticConventionStability._initialize()
    mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
        _OpenTelemetryStabilitySignalType.HTTP
    )
    return mode is _StabilityMode.HTTP


def wanted() -> bool:
    """Whether agentwatch's layer, not the contrib FastAPI instrumentor, traces FastAPI apps in this process."""
    from agentwatch.distro.settings import is_instrumentation_disabled, settings

    s = settings()
    if s.server_layer != "agentwatch" or s.asgi_message_spans:
        return False
    if is_instrumentation_disabled("fastapi") or is_instrumentation_disabled("agentwatch_web"):
        return False  # no server spans wanted at all, or our layer is not there to make them
    return stable_http_mode()
