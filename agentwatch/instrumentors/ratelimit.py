"""
Rate limits: the requests `slowapi`_ rejected, by the limit that was hit.

slowapi raises ``RateLimitExceeded(limit)`` for every request over a limit (decorator and middleware
alike) and answers it 429; one class-level wrapper on that exception's constructor counts it in
``agentwatch.rate_limit.rejections`` by ``agentwatch.rate_limit.limit`` (the limit as written, e.g.
``5 per 1 minute``; at most ``AGENTWATCH_RESILIENCE_MAX_NAMES`` distinct limits, later ones ``_other``)
and marks the current span -- the request's server span -- with the limit and an
``agentwatch.rate_limit.rejected`` event. Requests under their limits are not touched.

Every 429 the app answers, from slowapi or not, is already in the server's
``http.server.request.duration`` histogram with ``http.response.status_code=429`` and ``http.route``:
per route, ``sum by (http_route) (rate(http_server_request_duration_seconds_count{http_response_status_code="429"}[5m]))``
(docs/telemetry.md); no second metric is kept for it.

Loads only where slowapi is installed (entry point ``agentwatch_slowapi``) and wraps nothing until the
app imports it.

.. _slowapi: https://pypi.org/project/slowapi/

API
---
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import get_meter

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.instrumentors.breakers import NameBound, max_names
from agentwatch.version import __version__

__all__ = ["AgentwatchSlowapiInstrumentor"]

SCOPE = "agentwatch.instrumentors.ratelimit"
WHERE = "rate-limit instrumentation"
_MODULE = "slowapi.errors"


class AgentwatchSlowapiInstrumentor(BaseInstrumentor):
    """Counts slowapi's rejections by limit and marks the rejected request's span."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("slowapi",)

    def _instrument(self, **kwargs: Any) -> None:
        if importlib.util.find_spec("slowapi") is None:
            raise ModuleNotFoundError("slowapi is not installed", name="slowapi")
        meter = get_meter(SCOPE, __version__, meter_provider=kwargs.get("meter_provider"))
        built = sc.create_instruments(meter, sc.metrics_for_role(sc.RESILIENCE_METRICS, "ratelimit"))
        self._rejections = built[sc.RATE_LIMIT_REJECTIONS_METRIC]
        self._bound = NameBound(max_names())
        self._owner: Any = None
        self._active = True
        if _MODULE in sys.modules:
            self._apply(sys.modules[_MODULE])
        else:  # wrapt cannot unregister hooks: the hook checks whether this instrumentor is still active
            wrapt.register_post_import_hook(self._on_import, _MODULE)

    def _on_import(self, module: Any) -> None:
        if self._active and self._owner is None:
            guard.run(f"{WHERE}: wrapping slowapi", self._apply, module, outcome="slowapi rejections not counted")

    def _apply(self, module: Any) -> None:
        owner = module.RateLimitExceeded
        wrapt.wrap_function_wrapper(owner, "__init__", self._rejected)
        self._owner = owner

    def _rejected(self, wrapped, instance, args, kwargs):
        result = wrapped(*args, **kwargs)
        guard.run(f"{WHERE}: a rejection", self._record, instance, outcome="that rejection not counted")
        return result

    def _record(self, error: Any) -> None:
        limit = getattr(getattr(error, "limit", None), "limit", None)
        attrs = {sc.RATE_LIMIT_LIMIT: self._bound(str(limit) if limit is not None else "unknown")}
        self._rejections.add(1, attrs)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(attrs)
            span.add_event(sc.RATE_LIMIT_EVENT, attrs)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        if self._owner is not None:
            unwrap(self._owner, "__init__")
        self._owner = None
