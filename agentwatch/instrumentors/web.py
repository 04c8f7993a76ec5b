"""
Health endpoints, request ids and safe error responses for every FastAPI app,
without a code change.

``AgentwatchWebInstrumentor`` wraps ``fastapi.FastAPI.build_middleware_stack``
(the method Starlette calls once, on the first ASGI event, when every route
and handler of the app is known) on the class FastAPI defines, so it applies
whether or not the contrib FastAPI instrumentor has replaced ``fastapi.FastAPI``
by its subclass, and to apps created before or after. What it adds is
described in :mod:`agentwatch.web.middleware`. By default it also opens the HTTP server
span and records the ``http.server.*`` metrics itself, in the same layer, in place of the contrib
FastAPI instrumentation (:mod:`agentwatch.web.server`; ``AGENTWATCH_SERVER_LAYER=contrib`` switches
back; ``instrument(server_layer=True/False)`` forces the choice, ``tracer_provider=`` /
``meter_provider=`` as for any instrumentor). It wraps ``httpx``/``httpx2``
``Client.send``/``AsyncClient.send`` so calls made during a request carry its
``X-Request-ID`` (:mod:`agentwatch.web.outgoing`). It also wraps uvicorn's
``Server.handle_exit`` so readiness answers 503 from the moment SIGTERM
arrives (optionally keeping the server up ``AGENTWATCH_DRAIN_DELAY`` seconds).

Usage
-----

.. code:: python

    from agentwatch.instrumentors.web import AgentwatchWebInstrumentor

    AgentwatchWebInstrumentor().instrument()
    app = FastAPI()          # /health, /health/live, /health/ready, /health/startup, /health/detailed

Under ``opentelemetry-instrument`` it is loaded by the entry point
``opentelemetry_instrumentor: agentwatch_web``;
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentwatch_web`` switches it off.

API
---
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from agentwatch.distro.guard import guard, run

_instruments = ("fastapi >= 0.100",)

__all__ = ["AgentwatchWebInstrumentor"]


def _build_middleware_stack(wrapped, instance, args, kwargs):
    stack = wrapped(*args, **kwargs)  # FastAPI's own: its failures are the app's
    return run("adding agentwatch's web layer to the app", _build, instance, stack, default=stack,
               outcome="that app goes without health endpoints, request ids and error handlers")


def _build(app: Any, stack: Any) -> Any:
    from agentwatch.web.server import build

    return build(app, stack)


async def _background_task(wrapped, instance, args, kwargs):
    # The contrib FastAPI instrumentation's "BackgroundTask <name>" span, which it no longer makes when
    # agentwatch's server layer replaces it; when an app instruments itself with it, it makes that span.
    from agentwatch.web import server

    telemetry = server.active()
    if telemetry is None or hasattr(type(instance), "_otel_original_call"):
        return await wrapped(*args, **kwargs)
    func = instance.func
    with telemetry.tracer.start_as_current_span(f"BackgroundTask {getattr(func, '__name__', type(func).__name__)}"):
        return await wrapped(*args, **kwargs)


def _handle_exit(wrapped, instance, args, kwargs):
    # The signal must still stop the server.
    delayed = run("starting to drain on the shutdown signal", _drain, wrapped, instance, args, kwargs, default=False,
                  outcome="the server stops at once")
    return None if delayed else wrapped(*args, **kwargs)


def _drain(wrapped, instance, args, kwargs) -> bool:
    """Start draining; True when uvicorn's exit is delayed (``AGENTWATCH_DRAIN_DELAY`` after SIGTERM)."""
    from agentwatch.web import config, health

    sig = args[0] if args else kwargs.get("sig")
    health.start_draining("signal")
    delay = config.settings().drain_delay
    if delay > 0 and sig == signal.SIGTERM and not getattr(instance, "_agentwatch_drain_pending", False):
        instance._agentwatch_drain_pending = True
        timer = threading.Timer(delay, wrapped, args, kwargs)
        timer.daemon = True
        timer.start()
        return True
    return False


def _activate_server_layer(kwargs: dict[str, Any]) -> bool:
    """Open the server spans here (agentwatch's layer) when :func:`agentwatch.web.choice.wanted`."""
    from agentwatch.web import choice, server

    chosen = kwargs.get("server_layer")
    if not (choice.wanted() if chosen is None else chosen):
        return False
    server.activate(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
    wrap_function_wrapper("starlette.background", "BackgroundTask.__call__", _background_task)
    return True


class AgentwatchWebInstrumentor(BaseInstrumentor):
    """Adds agentwatch's health endpoints, request ids and error handling to FastAPI apps."""

    _instance = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from agentwatch.web import telemetry

        telemetry.use_meter_provider(kwargs.get("meter_provider"))
        self._server_layer = run("choosing the HTTP server layer", _activate_server_layer, kwargs, default=False,
                                 outcome="the contrib FastAPI instrumentation (if loaded) traces requests")
        wrap_function_wrapper("fastapi.applications", "FastAPI.build_middleware_stack", _build_middleware_stack)
        from agentwatch.web import outgoing

        self._outgoing = outgoing.instrument()
        from agentwatch.distro import boundaries

        with guard("bounding baggage propagation", "incoming baggage is accepted and forwarded as it is"):
            boundaries.install()
        self._uvicorn = False
        with guard("hooking uvicorn's shutdown signal", "draining starts at lifespan shutdown"):
            import importlib.util

            if importlib.util.find_spec("uvicorn") is not None:
                wrap_function_wrapper("uvicorn.server", "Server.handle_exit", _handle_exit)
                self._uvicorn = True

    def _uninstrument(self, **kwargs: Any) -> None:
        import fastapi.applications

        unwrap(fastapi.applications.FastAPI, "build_middleware_stack")
        if getattr(self, "_server_layer", False):
            import starlette.background

            from agentwatch.web import server

            server.deactivate()
            unwrap(starlette.background.BackgroundTask, "__call__")
            self._server_layer = False
        from agentwatch.web import outgoing

        outgoing.uninstrument(getattr(self, "_outgoing", []))
        self._outgoing = []
        from agentwatch.distro import boundaries

        boundaries.uninstall()
        if getattr(self, "_uvicorn", False):
            import uvicorn.server

            unwrap(uvicorn.server.Server, "handle_exit")
