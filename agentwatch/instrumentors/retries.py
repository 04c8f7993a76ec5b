"""
Retries: the failed attempts of `tenacity`_ retry loops, on the span of the call that owns them.

google-genai retries through tenacity (``HttpRetryOptions``); so do many apps (``@retry``). One
class-level hook on tenacity -- ``BaseRetrying._post_stop_check_actions``, which tenacity runs once
per failed attempt its ``retry`` predicate accepted, after it chose the wait and whether to stop --
hands each such attempt to the *owner* of the loop: the Gemini call span the attempt belongs to
(:mod:`agentwatch.instrumentors.gemini.retries`) or the span of a function named in
``AGENTWATCH_RETRY_TARGETS`` (:class:`AgentwatchRetryInstrumentor`). The owner's span gets one
``agentwatch.retry.failed_attempt`` event per failed attempt (attempt number, ``error.type``, HTTP
status, the wait tenacity chose, the delay the server advised) and the attempt count; the
``agentwatch.retry.failed_attempts`` counter counts them by outcome (``retried`` / ``exhausted``) and
error type. Successful attempts never reach the hook: a call that needs no retry pays nothing, and a
tenacity loop nobody owns pays one context-variable read per failed attempt.

Nothing is wrapped per loop or per client, so clients and decorated functions created before
instrumentation are covered too (import order does not matter).

.. _tenacity: https://pypi.org/project/tenacity/

Usage
-----

.. code:: python

    # myapp/clients.py
    from tenacity import retry, stop_after_attempt

    @retry(stop=stop_after_attempt(3))
    def fetch_rates(): ...

    # AGENTWATCH_RETRY_TARGETS=myapp.clients:fetch_rates   (one span "myapp.clients.fetch_rates" per call)

The same instrumentor records the connection retries of httpx / httpx2 transports created with
``retries=N`` (:mod:`agentwatch.instrumentors._transport_retries`): each failed connect is an event on the
HTTP client span, counted with ``agentwatch.retry.source=httpx``.

Under ``opentelemetry-instrument`` the ``agentwatch_retries`` entry point loads it;
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentwatch_retries`` switches the targets and transport retries off
(the Gemini instrumentor keeps its own use of the tenacity hook). Nothing is imported or wrapped before the
app imports tenacity or httpcore.

API
---
"""

from __future__ import annotations

import contextvars
import importlib.util
import threading
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.distro._diagnostics import warn_once
from agentwatch.instrumentors._retry_attempts import (
    SCOPE,
    Attempts,
    RetryInstruments,
    advised_delay,
    error_type,
)
from agentwatch.version import __version__

__all__ = ["AgentwatchRetryInstrumentor", "Attempts", "RetryInstruments", "add_owner_finder", "advised_delay"]

WHERE = "retry instrumentation"
_SKIPPED = "that attempt not recorded"
_HOOKED = ("tenacity", "BaseRetrying._post_stop_check_actions")


# ---- the tenacity hook: installed while at least one owner kind is registered
_finders: list[Callable[[Any], Attempts | None]] = []
_lock = threading.Lock()


def add_owner_finder(finder: Callable[[Any], Attempts | None]) -> Callable[[], None]:
    """Register ``finder(retry_state) -> Attempts | None`` (who owns a failed attempt) and hook tenacity if
    it is not yet; returns the function that removes it (and unhooks tenacity after the last one)."""
    with _lock:
        if not _finders:
            _hook()
        _finders.append(finder)

    def remove() -> None:
        with _lock:
            if finder in _finders:
                _finders.remove(finder)
                if not _finders:
                    _unhook()

    return remove


def _hook() -> None:
    import tenacity
    from wrapt import wrap_function_wrapper

    if not callable(getattr(tenacity.BaseRetrying, "_post_stop_check_actions", None)):
        warn_once("retries:tenacity", "this tenacity has no BaseRetrying._post_stop_check_actions: retries are not recorded")
        return
    wrap_function_wrapper(*_HOOKED, _after_failed_attempt)


def _unhook() -> None:
    import tenacity
    from opentelemetry.instrumentation.utils import unwrap

    unwrap(tenacity.BaseRetrying, "_post_stop_check_actions")


def _after_failed_attempt(wrapped, instance, args, kwargs):
    result = wrapped(*args, **kwargs)
    retry_state = args[0] if args else kwargs.get("retry_state")
    for finder in tuple(_finders):
        owner = guard.run(f"{WHERE}: finding the owner", finder, retry_state, outcome=_SKIPPED)
        if owner is not None:
            guard.run(f"{WHERE}: recording an attempt", _record, owner, instance, retry_state, outcome=_SKIPPED)
            break
    return result


def _record(owner: Attempts, retrying: Any, retry_state: Any) -> None:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    retried = not retrying.iter_state.stop_run_result
    delay = retry_state.upcoming_sleep if retried else None
    owner.record(error, retry_state.attempt_number, delay, retried)


# ---- AGENTWATCH_RETRY_TARGETS: the app's tenacity-decorated functions
_TARGET: contextvars.ContextVar[tuple[Any, Attempts] | None] = contextvars.ContextVar("agentwatch_retry_target", default=None)


def _target_owner(retry_state: Any) -> Attempts | None:
    current = _TARGET.get()
    if current is None:
        return None
    function, attempts = current
    return attempts if retry_state.fn is function else None


class _Role:
    role = "retry"


class _TargetWrapper:
    """The wrapt wrapper of one target: one INTERNAL span per call, owning the attempts of its own loop."""

    role = _Role()

    def __init__(self, target: Any, tracer: Any, instruments: RetryInstruments):
        self.label = target.label
        self.tracer = tracer
        self.instruments = instruments
        self.attributes = {sc.RETRY_SOURCE: "tenacity", sc.RETRY_TARGET: self.label}

    def _start(self, wrapped: Any) -> tuple[Any, Attempts, Any]:
        # the undecorated function tenacity calls (functools.wraps keeps it as __wrapped__)
        function = getattr(wrapped, "__wrapped__", None)
        span = self.tracer.start_span(self.label, kind=SpanKind.INTERNAL, attributes={sc.RETRY_TARGET: self.label})
        attempts = Attempts(span, self.instruments, self.attributes)
        return span, attempts, _TARGET.set((function, attempts))

    @staticmethod
    def _end(span: Any, attempts: Attempts, token: Any, error: BaseException | None) -> None:
        _TARGET.reset(token)
        span.set_attribute(sc.RETRY_ATTEMPTS, attempts.retried + 1)
        if error is not None:
            span.set_attribute(sc.ERROR_TYPE, error_type(error))
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
        span.end()

    def __call__(self, wrapped, instance, args, kwargs):
        if _is_async(wrapped):
            return self._async(wrapped, args, kwargs)  # started inside the coroutine: its context is the task's
        started = guard.run(f"{WHERE}: span start", self._start, wrapped, outcome="that call not traced")
        if started is None:
            return wrapped(*args, **kwargs)
        span, attempts, token = started
        error = None
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                return wrapped(*args, **kwargs)
        except BaseException as failure:
            error = failure
            raise
        finally:
            guard.run(f"{WHERE}: span end", self._end, span, attempts, token, error, outcome="that call not traced")

    async def _async(self, wrapped, args, kwargs):
        started = guard.run(f"{WHERE}: span start", self._start, wrapped, outcome="that call not traced")
        if started is None:
            return await wrapped(*args, **kwargs)
        span, attempts, token = started
        error = None
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                return await wrapped(*args, **kwargs)
        except BaseException as failure:
            error = failure
            raise
        finally:
            guard.run(f"{WHERE}: span end", self._end, span, attempts, token, error, outcome="that call not traced")


def _is_async(function: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(getattr(function, "__wrapped__", None))


class AgentwatchRetryInstrumentor(BaseInstrumentor):
    """Spans and attempt counts for the tenacity-decorated functions named in ``AGENTWATCH_RETRY_TARGETS``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # tenacity (targets) and httpcore (transport retries) are each optional

    def _instrument(self, **kwargs: Any) -> None:
        from agentwatch.distro import environment_variables as ev
        from agentwatch.instrumentors._agents.targets import TargetSet, parse_targets
        from agentwatch.instrumentors._transport_retries import TransportRetries

        instruments = RetryInstruments(kwargs.get("meter_provider"))
        self._remove: Callable[[], None] | None = None
        self._targets = TargetSet()
        # httpx/httpx2 transports with retries=N: wrapped when httpcore is imported, per new connection only
        self._transports = TransportRetries(instruments)
        self._transports.start()
        targets = parse_targets(ev.AGENTWATCH_RETRY_TARGETS)
        if not targets:
            return  # nothing named: tenacity is not even hooked
        if importlib.util.find_spec("tenacity") is None:
            warn_once("retries:no-tenacity", f"{ev.AGENTWATCH_RETRY_TARGETS} is set but tenacity is not installed; ignored")
            return
        tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=kwargs.get("tracer_provider"))
        for target in targets:
            self._targets.add(target, lambda t: _TargetWrapper(t, tracer, instruments))
        self._remove = add_owner_finder(_target_owner)
        self._targets.start()

    def _uninstrument(self, **kwargs: Any) -> None:
        transports = getattr(self, "_transports", None)
        if transports is not None:
            transports.stop()
        targets = getattr(self, "_targets", None)
        if targets is not None:
            targets.stop()
        remove = getattr(self, "_remove", None)
        if remove is not None:
            remove()
        self._remove = None
