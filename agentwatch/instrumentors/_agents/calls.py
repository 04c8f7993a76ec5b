"""The call machinery: what one traced call of an agent step records, and the wrapper around it.

:func:`make_wrapper` gives one wrapt wrapper for plain functions, methods (instance, class,
static), coroutines, generators and async generators. The span is current while the function runs
(so sqlite3 / HTTP spans nest under it) and, for generators, only while the generator runs. The
function returns exactly what it returned and raises exactly what it raised; a failure of ours
(starting the span, reading the result, metrics) goes through :mod:`agentwatch.distro.guard`: said
once, and the call goes on (under the test suite it re-raises, so the bug fails a test).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import run
from agentwatch.distro.settings import Reader
from agentwatch.instrumentors._agents.extract import MISSING
from agentwatch.instrumentors._agents.main_targets import WATCH
from agentwatch.instrumentors._agents.settings import telemetry_disabled
from agentwatch.instrumentors._agents.targets import resolve_callable
from agentwatch.version import __version__

SCOPE = "agentwatch.instrumentors"

class Role:
    """What one kind of agent step records. Subclasses fill the hooks; all are guarded."""

    role = ""
    entry_point = ""
    span_kind = SpanKind.INTERNAL
    extractor_variable = ""

    def __init__(self) -> None:
        self._tracer_provider = None
        self._meter_provider = None
        self._tracer = None
        self._instruments: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._extractor: Any = MISSING
        self._env_disabled: bool | None = None
        # The guard's step names, built once: begin/end run on every traced call.
        self.start_step = f"agent telemetry ({self.role} start)"
        self.end_step = f"agent telemetry ({self.role} end)"
        self.configure()

    def configure(self) -> None:
        """Read this role's settings (called at creation and on every bind)."""

    def enabled(self) -> bool:
        """Whether calls are traced: not when the SDK or this instrumentor is switched off, or no SDK is set up."""
        if self._env_disabled is None:
            self._env_disabled = telemetry_disabled(self.entry_point)
        if self._env_disabled:
            return False
        if self._tracer_provider is not None:
            return True
        return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))

    # --- providers and instruments ------------------------------------------------
    def bind(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        with self._lock:
            self._tracer_provider, self._meter_provider = tracer_provider, meter_provider
            self._tracer, self._instruments = None, None
            self._extractor = MISSING
            self._env_disabled = None
        self.configure()

    @property
    def tracer(self):
        if self._tracer is None:
            self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=self._tracer_provider)
        return self._tracer

    def instruments(self) -> dict[str, Any]:
        if self._instruments is None:
            from opentelemetry import metrics

            from agentwatch import semconv

            meter = metrics.get_meter(SCOPE, __version__, meter_provider=self._meter_provider)
            self._instruments = semconv.create_instruments(meter, semconv.metrics_for(self.role))
        return self._instruments

    def default_extractor(self) -> Callable[[Any], Any] | None:
        if self._extractor is MISSING:
            spec = Reader().read(self.extractor_variable) if self.extractor_variable else None
            self._extractor = resolve_callable(spec, self.extractor_variable) if spec else None
        return self._extractor

    # --- hooks (override) -----------------------------------------------------------
    def span_name(self, name: str) -> str:
        return name

    def target_name(self, target: Any) -> str:
        """The name a ``*_TARGETS`` entry is traced under (default: ``=name`` or ``module.function``)."""
        return target.label

    def start_attributes(self, call: Call) -> dict[str, Any]:
        return {}

    def start_links(self, call: Call) -> list[Any] | None:
        """Span links of the call's span (called after :meth:`start_attributes`)."""
        return None

    def enter(self, call: Call, ctx: Any) -> Any:
        """Return the context the function runs in (roles may add values)."""
        return ctx

    def finish(self, call: Call, result: Any) -> None:
        """Read the result, set attributes, record metrics (result may be MISSING)."""

    def failed(self, call: Call, error: BaseException) -> None:
        """Record metrics for a call that raised."""


@dataclass
class Call:
    """One traced invocation."""

    role: Role
    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    extractor: Callable[[Any], Any] | None = None
    span: Any = None
    context: Any = None
    started: float = 0.0
    state: Any = None
    function: Any = None  # the wrapped function (roles that read its docstring)

    @property
    def duration(self) -> float:
        return time.perf_counter() - self.started

    def extract(self, result: Any) -> Any:
        """The result passed through the user's extractor, if any; MISSING if that failed."""
        if self.extractor is None or result is MISSING:
            return result
        try:
            return self.extractor(result)
        except Exception as error:  # noqa: BLE001 - the user's extractor must not break the app
            warn_once(
                f"extractor-failed:{self.role.role}:{getattr(self.extractor, '__qualname__', self.extractor)}",
                f"the {self.role.role} extractor {getattr(self.extractor, '__qualname__', self.extractor)!r} "
                f"raised {error!r}; the span is recorded without the result attributes",
            )
            return MISSING


def begin(
    role: Role, name: str, args: tuple = (), kwargs: dict | None = None, extractor: Any = None, function: Any = None
) -> Call | None:
    """Start the span of one call; None if telemetry could not start (the call then runs untraced)."""

    def start() -> Call:
        call = Call(role, name, args, kwargs or {}, extractor if extractor is not None else role.default_extractor())
        call.function = function
        attributes = role.start_attributes(call)
        call.span = role.tracer.start_span(
            role.span_name(name), kind=role.span_kind, attributes=attributes, links=role.start_links(call)
        )
        call.context = role.enter(call, trace.set_span_in_context(call.span))
        call.started = time.perf_counter()
        return call

    return run(role.start_step, start, outcome="the call runs untraced")


def end(call: Call | None, result: Any = MISSING, error: BaseException | None = None) -> None:
    """Finish one call: result or error attributes, metrics, span end.

    A failure of ours is said once and the app's result or exception passes on untouched
    (:mod:`agentwatch.distro.guard`; under the test suite it re-raises).
    """
    if call is None:
        return

    def finish() -> None:
        try:
            if error is not None:
                if isinstance(error, Exception):
                    call.span.set_attribute("error.type", type(error).__qualname__)
                    call.span.record_exception(error)
                    call.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                call.role.failed(call, error)
            else:
                call.role.finish(call, call.extract(result))
        finally:
            call.span.end()

    run(call.role.end_step, finish, outcome="the call's outcome is not recorded")


def attach(call: Call | None) -> Any:
    """Make the call's context current; the token for :func:`detach` (None for an untraced call)."""
    if call is None or call.context is None:
        return None
    try:
        return otel_context.attach(call.context)
    except Exception:  # noqa: BLE001
        return None


def detach(token: Any) -> None:
    """Undo :func:`attach` (a no-op for None). Never raises: the app's own flow comes first."""
    if token is not None:
        try:
            otel_context.detach(token)
        except Exception:  # noqa: BLE001,S110
            pass


def function_kind(function: Any) -> str:
    """``sync``, ``async``, ``gen`` or ``asyncgen`` for a function, method or descriptor."""
    function = getattr(function, "__func__", function)
    try:
        function = inspect.unwrap(function)
    except Exception:  # noqa: BLE001,S110
        pass
    if inspect.isasyncgenfunction(function):
        return "asyncgen"
    if inspect.iscoroutinefunction(function):
        return "async"
    if inspect.isgeneratorfunction(function):
        return "gen"
    return "sync"


def _call_sync(role, name, extractor, wrapped, args, kwargs):
    call = begin(role, name, args, kwargs, extractor, wrapped)
    token = attach(call)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        detach(token)
        end(call, error=error)
        raise
    detach(token)
    end(call, result)
    return result


async def _call_async(role, name, extractor, wrapped, args, kwargs):
    call = begin(role, name, args, kwargs, extractor, wrapped)
    token = attach(call)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        detach(token)
        end(call, error=error)
        raise
    detach(token)
    end(call, result)
    return result


def _call_gen(role, name, extractor, wrapped, args, kwargs):
    """A generator that yields what ``wrapped`` yields; the span covers its whole life."""
    call = begin(role, name, args, kwargs, extractor, wrapped)
    items: list[Any] = []
    token = attach(call)
    try:
        generator = wrapped(*args, **kwargs)
    except BaseException as error:
        detach(token)
        end(call, error=error)
        raise
    detach(token)
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            token = attach(call)
            try:
                if throw is not None:
                    pending, throw = throw, None
                    item = generator.throw(pending)
                else:
                    item = generator.send(send)
            except StopIteration as stop:
                returned = stop.value
                break
            finally:
                detach(token)
            items.append(item)
            try:
                send = yield item
            except GeneratorExit:
                generator.close()
                end(call, items)
                raise
            except BaseException as thrown:  # noqa: BLE001 - passed into the generator
                throw = thrown
    except GeneratorExit:
        raise
    except BaseException as error:
        end(call, error=error)
        raise
    end(call, items)
    return returned


async def _call_asyncgen(role, name, extractor, wrapped, args, kwargs):
    """An async generator that yields what ``wrapped`` yields; the span covers its whole life."""
    call = begin(role, name, args, kwargs, extractor, wrapped)
    items: list[Any] = []
    token = attach(call)
    try:
        agen = wrapped(*args, **kwargs)
    except BaseException as error:
        detach(token)
        end(call, error=error)
        raise
    detach(token)
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            token = attach(call)
            try:
                if throw is not None:
                    pending, throw = throw, None
                    item = await agen.athrow(pending)
                else:
                    item = await agen.asend(send)
            except StopAsyncIteration:
                break
            finally:
                detach(token)
            items.append(item)
            try:
                send = yield item
            except GeneratorExit:
                await agen.aclose()
                end(call, items)
                raise
            except BaseException as thrown:  # noqa: BLE001 - passed into the generator
                throw = thrown
    except GeneratorExit:
        raise
    except BaseException as error:
        end(call, error=error)
        raise
    end(call, items)


_RUNNERS = {"sync": _call_sync, "async": _call_async, "gen": _call_gen, "asyncgen": _call_asyncgen}


def make_wrapper(
    role: Role,
    name: str,
    kind: str | None = None,
    extractor: Callable[[Any], Any] | None = None,
    enabled: Callable[[], bool] | None = None,
) -> Callable[..., Any]:
    """A wrapt wrapper ``(wrapped, instance, args, kwargs)`` tracing each call as ``role``.

    ``kind`` is detected on the first call when not given. ``enabled`` (checked
    per call) lets decorators step aside when telemetry is off.
    """
    detected: dict[str, str] = {}

    def wrapper(wrapped, instance, args, kwargs):
        if WATCH.pending:  # last chance for script targets defined after the script's last import
            WATCH.check()
        if enabled is not None and not enabled():
            return wrapped(*args, **kwargs)
        how = kind or detected.get("kind")
        if how is None:
            how = detected.setdefault("kind", function_kind(wrapped))
        return _RUNNERS[how](role, name, extractor, wrapped, args, kwargs)

    wrapper.role = role  # type: ignore[attr-defined]
    return wrapper
