"""
Circuit breakers: the state of every `pybreaker`_ / `aiobreaker`_ breaker the app uses, its transitions
and the calls it refused.

- ``agentwatch.circuit_breaker.state`` (observable gauge): 0 closed, 1 half-open, 2 open, one series
  per breaker, read from the breaker's cached state when metrics are collected (never a storage round
  trip: a Redis-backed pybreaker is not called);
- ``agentwatch.circuit_breaker.transitions`` (counter): each state change, from / to;
- ``agentwatch.circuit_breaker.rejected_calls`` (counter): calls an open breaker refused without running
  them; the span current at that moment (the request's server span, typically) gets the breaker's name
  and state and an ``agentwatch.circuit_breaker.rejected`` event.

Breakers are met where the libraries create and change states (``CircuitBreaker._create_new_state``,
one class-level wrapper per library), so a breaker created at import time, before instrumentation, is
seen from its first state change or refusal on; one created after it from its creation. They are held
weakly. Names come from the breaker's ``name`` (else ``unnamed``); at most
``AGENTWATCH_RESILIENCE_MAX_NAMES`` distinct names per process become metric attributes, later ones
count as ``_other``.

Each library's instrumentor loads only where it is installed (entry points ``agentwatch_pybreaker``,
``agentwatch_aiobreaker``) and wraps nothing until the app imports the library: an app without them pays
nothing. Successful calls through a breaker are not touched at all.

.. _pybreaker: https://pypi.org/project/pybreaker/
.. _aiobreaker: https://pypi.org/project/aiobreaker/

API
---
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import weakref
from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import CallbackOptions, Observation, get_meter

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.version import __version__

__all__ = ["AgentwatchAiobreakerInstrumentor", "AgentwatchPybreakerInstrumentor", "NameBound"]

SCOPE = "agentwatch.instrumentors.breakers"  # + ".pybreaker" / ".aiobreaker": the meter's scope
WHERE = "circuit-breaker instrumentation"
_SKIPPED = "that breaker event not recorded"
OTHER = "_other"


class NameBound:
    """At most ``limit`` distinct names pass; later ones are ``_other`` (thread-safe)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.names: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        if name in self.names:
            return name
        with self._lock:
            if len(self.names) < self.limit:
                self.names.add(name)
                return name
        return OTHER


def max_names() -> int:
    from agentwatch.instrumentors._agents.settings import agent_settings

    return agent_settings().resilience_max_names


def _state_name(state: Any) -> str:
    """``closed`` / ``open`` / ``half-open`` of a pybreaker state (``name``) or an aiobreaker one (``state`` enum)."""
    name = getattr(state, "name", None)
    if isinstance(name, str):
        return name
    enum = getattr(state, "state", None)
    return str(getattr(enum, "name", enum)).lower().replace("_", "-")


class _Library:
    """One breaker library: its module, error class name and how a refusal is told from a trial failure."""

    def __init__(self, name: str, module: str):
        self.name = name
        self.module = module


PYBREAKER = _Library("pybreaker", "pybreaker")
AIOBREAKER = _Library("aiobreaker", "aiobreaker")


class _Breakers:
    """The breakers seen (weakly), the instruments, and the wrappers that feed them."""

    def __init__(self, library: _Library, meter_provider: Any):
        self.library = library
        self.bound = NameBound(max_names())
        self.seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self._seen_lock = threading.Lock()  # the gauge callback copies the set while app threads add to it
        # a scope per library: each registers its own state gauge (one meter cannot hold two of one name)
        meter = get_meter(f"{SCOPE}.{library.name}", __version__, meter_provider=meter_provider)
        built = sc.create_instruments(meter, sc.metrics_for_role(sc.RESILIENCE_METRICS, "breakers"), [self.observe])
        self.transitions = built[sc.BREAKER_TRANSITIONS_METRIC]
        self.rejected = built[sc.BREAKER_REJECTED_METRIC]

    def attributes(self, breaker: Any) -> dict[str, Any]:
        name = getattr(breaker, "name", None) or "unnamed"
        return {sc.BREAKER_NAME: self.bound(str(name)), sc.BREAKER_LIBRARY: self.library.name}

    def observe(self, options: CallbackOptions) -> list[Observation]:
        found: dict[tuple, Observation] = {}
        with self._seen_lock:
            breakers = list(self.seen)
        for breaker in breakers:
            state = getattr(breaker, "_state", None)  # the cached state: no storage round trip
            value = sc.BREAKER_STATE_VALUES.get(_state_name(state)) if state is not None else None
            if value is not None:
                attrs = self.attributes(breaker)
                key = tuple(sorted(attrs.items()))
                # breakers folded into _other: the worst state shows
                if key not in found or value > found[key].value:
                    found[key] = Observation(value, attrs)
        return list(found.values())

    # ---- CircuitBreaker._create_new_state(new_state, prev_state=None, notify=False)
    def new_state(self, wrapped, instance, args, kwargs):
        state = wrapped(*args, **kwargs)
        guard.run(f"{WHERE}: state change", self._changed, instance, state, args, kwargs, outcome=_SKIPPED)
        return state

    def _see(self, breaker: Any) -> None:
        if breaker not in self.seen:
            with self._seen_lock:
                self.seen.add(breaker)

    def _changed(self, breaker: Any, state: Any, args: tuple, kwargs: dict) -> None:
        self._see(breaker)
        prev = kwargs.get("prev_state", args[1] if len(args) > 1 else None)
        notify = kwargs.get("notify", args[2] if len(args) > 2 else False)
        if notify and prev is not None:
            self.transitions.add(1, {
                **self.attributes(breaker), sc.BREAKER_FROM_STATE: _state_name(prev), sc.BREAKER_STATE: _state_name(state),
            })

    # ---- CircuitOpenState.before_call: raises the library's CircuitBreakerError when it refuses the call
    def before_call(self, wrapped, instance, args, kwargs):
        breaker = getattr(instance, "_breaker", None)
        state = getattr(breaker, "_state", None)
        try:
            return wrapped(*args, **kwargs)
        except Exception as error:
            # a refusal leaves the breaker open; pybreaker's before_call also runs the half-open trial
            # call, whose failure re-opens it through a new state object: not a refusal
            if type(error).__name__ == "CircuitBreakerError" and getattr(breaker, "_state", None) is state:
                guard.run(f"{WHERE}: rejected call", self._rejected, breaker, outcome=_SKIPPED)
            raise

    def _rejected(self, breaker: Any) -> None:
        self._see(breaker)
        attrs = self.attributes(breaker)
        self.rejected.add(1, attrs)
        span = trace.get_current_span()
        if span.is_recording():
            on_span = {**attrs, sc.BREAKER_STATE: "open"}
            span.set_attributes(on_span)
            span.add_event(sc.BREAKER_REJECTED_EVENT, on_span)


class _BreakerInstrumentor(BaseInstrumentor):
    library: _Library
    _TARGETS = (("CircuitBreaker", "_create_new_state", "new_state"), ("CircuitOpenState", "before_call", "before_call"))

    def instrumentation_dependencies(self) -> Collection[str]:
        return (self.library.name,)

    def _instrument(self, **kwargs: Any) -> None:
        if importlib.util.find_spec(self.library.module) is None:
            raise ModuleNotFoundError(f"{self.library.module} is not installed", name=self.library.module)
        self._breakers = _Breakers(self.library, kwargs.get("meter_provider"))
        self._applied: list[tuple[Any, str]] = []
        self._active = True
        if self.library.module in sys.modules:
            self._apply(sys.modules[self.library.module])
        else:  # wrapt cannot unregister hooks: the hook checks whether this instrumentor is still active
            wrapt.register_post_import_hook(self._on_import, self.library.module)

    def _on_import(self, module: Any) -> None:
        if self._active and not self._applied:
            guard.run(f"{WHERE}: wrapping {self.library.name}", self._apply, module, outcome="breakers not instrumented")

    def _apply(self, module: Any) -> None:
        for class_name, method, handler in self._TARGETS:
            owner = _find_class(module, class_name)
            if owner is None or not callable(getattr(owner, method, None)):
                continue
            wrapt.wrap_function_wrapper(owner, method, getattr(self._breakers, handler))
            self._applied.append((owner, method))

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        for owner, method in reversed(getattr(self, "_applied", [])):
            unwrap(owner, method)
        self._applied = []


def _find_class(module: Any, name: str) -> Any:
    found = getattr(module, name, None)
    if found is None:  # aiobreaker keeps its state classes in aiobreaker.state
        state_module = sys.modules.get(f"{module.__name__}.state")
        found = getattr(state_module, name, None)
    return found


class AgentwatchPybreakerInstrumentor(_BreakerInstrumentor):
    """State gauge, transitions and refused calls of every pybreaker ``CircuitBreaker``."""

    library = PYBREAKER


class AgentwatchAiobreakerInstrumentor(_BreakerInstrumentor):
    """State gauge, transitions and refused calls of every aiobreaker ``CircuitBreaker``."""

    library = AIOBREAKER
