"""Shared machinery of the agent instrumentors (intent, rag, planner).

- **Targets**: ``module:function`` / ``module:Class.method`` strings (from
  ``AGENTWATCH_*_TARGETS``), optionally ``=name`` to name the classifier, data
  source, agent or critic. :class:`TargetSet` wraps each one when its module is
  imported, whatever the import order (wrapt post-import hooks: immediately if
  the module is already imported, otherwise right after it finishes loading,
  before ``from module import function`` binds the name), and unwraps them
  symmetrically. A target whose module or attribute does not exist costs one
  warning naming it.
- **Calls**: :func:`make_wrapper` gives one wrapt wrapper for plain functions,
  methods (instance, class, static), coroutines, generators and async
  generators. The span is current while the function runs (so sqlite3 / HTTP
  spans nest under it) and, for generators, only while the generator runs.
  The function returns exactly what it returned and raises exactly what it
  raised; a failure of ours (extraction, metrics) is reported once and never
  reaches the app.
- **Extraction**: helpers reading an intent, documents or a verdict from the
  common return shapes (str, tuple, dict, dataclass, pydantic model, object
  attributes, lists, chromadb / LangChain results). Unknown shape -> ``None``.
- **Settings**: small parsers for this family's variables; a bad value warns
  once naming the variable, the value and the fallback.

Nothing here imports the app or any library beyond OpenTelemetry and wrapt.
"""

from __future__ import annotations

import enum
import functools
import importlib
import importlib.machinery
import inspect
import math
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Collection

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.settings import _Reader, is_instrumentation_disabled
from agentwatch.instrumentors import _genai_common as g
from agentwatch.version import __version__

SCOPE = "agentwatch.instrumentors"
MISSING: Any = object()

# ===================================================================== settings


def env_text(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_int(name: str, default: int, low: int, high: int) -> int:
    value = env_text(name)
    if value is None:
        return default
    try:
        number = int(value)
        if not low <= number <= high:
            raise ValueError
    except ValueError:
        warn_once(f"config:{name}", f"{name}={value!r} is not a whole number between {low} and {high}; using {default} instead")
        return default
    return number


def env_float(name: str, default: float, low: float, high: float) -> float:
    value = env_text(name)
    if value is None:
        return default
    try:
        number = float(value)
        if not low <= number <= high:  # also rejects nan
            raise ValueError
    except ValueError:
        warn_once(f"config:{name}", f"{name}={value!r} is not a number between {low:g} and {high:g}; using {default:g} instead")
        return default
    return number


def capture_content() -> g.CaptureSettings | None:
    """The content-capture settings when query text / document content / explanations go on spans, else None.

    Read once per call, exactly as the Gemini instrumentor reads them
    (:func:`agentwatch.instrumentors._genai_common.capture_settings`): ``SPAN_ONLY`` /
    ``SPAN_AND_EVENT`` (or ``true``) capture, anything else does not.
    """
    settings = g.capture_settings()
    return settings if settings.on_span else None


def clip(text: str, settings: g.CaptureSettings | None = None) -> str:
    """Captured text as GenAI content is recorded: scrubbed, then cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``.

    Pass the ``settings`` of :func:`capture_content` to avoid reading the environment again.
    """
    max_chars = (settings or g.capture_settings()).max_chars
    return g.scrub_text(text, max_chars)


def telemetry_disabled(entry_point: str) -> bool:
    """True when the SDK is off or this instrumentor is listed in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS."""
    if _Reader(os.environ, {}).boolean(ev.OTEL_SDK_DISABLED, False):
        return True
    return is_instrumentation_disabled(entry_point)


# ====================================================================== targets

_IDENT = r"[A-Za-z_]\w*"
_TARGET = re.compile(rf"^(?P<module>{_IDENT}(?:\.{_IDENT})*):(?P<path>{_IDENT}(?:\.{_IDENT})*)(?:=(?P<name>[\w.\-/ ]+))?$")


@dataclass(frozen=True)
class Target:
    module: str
    path: str  # "function" or "Class.method"
    name: str | None = None  # user-given name (data source, agent, ...)
    variable: str = ""

    @property
    def spec(self) -> str:
        return f"{self.module}:{self.path}"

    @property
    def label(self) -> str:
        """Default name: the function's module and qualified name (``knowledge.search``)."""
        return self.name or f"{self.module.rsplit('.', 1)[-1]}.{self.path}"


def parse_targets(variable: str, raw: str | None = None) -> list[Target]:
    """Parse a comma-separated target list; bad items warn once and are skipped."""
    raw = env_text(variable) if raw is None else raw
    targets: list[Target] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        match = _TARGET.match(item)
        if match is None:
            warn_once(
                f"target:{variable}:{item}",
                f"{variable}: {item!r} is not module:function or module:Class.method; ignoring it "
                "(the other targets are used)",
            )
            continue
        name = (match.group("name") or "").strip() or None
        targets.append(Target(match.group("module"), match.group("path"), name, variable))
    return targets


def resolve_callable(spec: str, variable: str) -> Callable[..., Any] | None:
    """Import ``module:attr.path`` (a user extractor); None (after one warning) when it does not resolve."""
    match = _TARGET.match(spec)
    try:
        if match is None:
            raise ValueError("not module:function")
        obj: Any = importlib.import_module(match.group("module"))
        for part in match.group("path").split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError("not callable")
        return obj
    except Exception as error:  # noqa: BLE001 - configuration error, reported
        warn_once(f"extractor:{variable}:{spec}", f"{variable}={spec!r} cannot be used ({error}); using the built-in extraction instead")
        return None


def _module_findable(module: str) -> bool:
    """Whether ``module``'s top-level package exists, without importing anything.

    ``sys.path[0]`` (the script's directory) is not set yet when
    ``opentelemetry-instrument`` loads instrumentors, and uvicorn adds the
    working directory later, so both are searched too.
    """
    top = module.split(".", 1)[0]
    if top in sys.modules:
        return True
    extra = [os.getcwd()]
    if sys.argv and sys.argv[0] and os.path.exists(sys.argv[0]):
        extra.append(os.path.dirname(os.path.abspath(sys.argv[0])))
    try:
        return importlib.machinery.PathFinder.find_spec(top, list(sys.path) + extra) is not None or top in sys.builtin_module_names
    except Exception:  # noqa: BLE001
        return True  # cannot tell: do not warn


_WRAPPER_TAG = "_self_agentwatch_role"


class TargetSet:
    """The env-var targets of one instrumentor: wrapped on import, unwrapped on uninstrument."""

    # One post-import hook per module for the whole process (wrapt cannot
    # unregister hooks); it applies whatever is pending at the time.
    _hooked: set[str] = set()
    _pending: dict[str, list["TargetSet"]] = {}
    _lock = threading.RLock()

    def __init__(self) -> None:
        self.entries: list[tuple[Target, Callable[[Target], Any]]] = []
        self.applied: list[tuple[Any, str, Target]] = []  # (parent object, attribute name, target)
        self.active = False

    def add(self, target: Target, wrapper_factory: Callable[[Target], Any]) -> None:
        self.entries.append((target, wrapper_factory))

    def start(self) -> None:
        self.active = True
        modules = {target.module for target, _ in self.entries}
        for module in sorted(modules):
            if not _module_findable(module):
                for target, _ in self.entries:
                    if target.module == module:
                        warn_once(
                            f"target:{target.variable}:{target.spec}",
                            f"{target.variable}: module {module!r} of target {target.spec!r} was not found; "
                            "it is wrapped only if that module is imported later",
                        )
            with TargetSet._lock:
                TargetSet._pending.setdefault(module, []).append(self)
                first = module not in TargetSet._hooked
                TargetSet._hooked.add(module)
            if first:
                wrapt.register_post_import_hook(functools.partial(TargetSet._on_import, module), module)
            elif module in sys.modules:
                self._apply(sys.modules[module])

    def stop(self) -> None:
        self.active = False
        with TargetSet._lock:
            for sets in TargetSet._pending.values():
                while self in sets:
                    sets.remove(self)
        for parent, attribute, _target in reversed(self.applied):
            try:
                current = inspect.getattr_static(parent, attribute)
                if isinstance(current, wrapt.FunctionWrapper) and getattr(current, _WRAPPER_TAG, None):
                    setattr(parent, attribute, current.__wrapped__)
            except Exception:  # noqa: BLE001,S110 - best effort
                pass
        self.applied.clear()

    @staticmethod
    def _on_import(module_name: str, module: Any) -> None:
        with TargetSet._lock:
            sets = list(TargetSet._pending.get(module_name, ()))
        for target_set in sets:
            target_set._apply(module)

    def _apply(self, module: Any) -> None:
        for target, factory in self.entries:
            if target.module != module.__name__ or not self.active:
                continue
            if any(applied is target for _, _, applied in self.applied):
                continue
            try:
                parent: Any = module
                *owners, attribute = target.path.split(".")
                for part in owners:
                    parent = getattr(parent, part)
                try:
                    current = inspect.getattr_static(parent, attribute)
                except AttributeError:
                    warn_once(
                        f"target:{target.variable}:{target.spec}",
                        f"{target.variable}: {target.spec!r} does not exist ({module.__name__!r} has no "
                        f"{target.path!r}); not instrumented",
                    )
                    continue
                if isinstance(current, wrapt.FunctionWrapper) and getattr(current, _WRAPPER_TAG, None):
                    continue  # already ours (e.g. a decorator of the same role)
                function = getattr(current, "__func__", current)
                if not callable(function):
                    warn_once(f"target:{target.variable}:{target.spec}", f"{target.variable}: {target.spec!r} is not callable; not instrumented")
                    continue
                wrapper = factory(target)
                wrapt.wrap_function_wrapper(parent, attribute, wrapper)
                setattr(inspect.getattr_static(parent, attribute), _WRAPPER_TAG, wrapper.role.role)
                self.applied.append((parent, attribute, target))
            except Exception as error:  # noqa: BLE001 - never break the import
                warn_once(
                    f"target:{target.variable}:{target.spec}",
                    f"{target.variable}: could not instrument {target.spec!r} ({error!r}); skipped",
                )


# ======================================================================== calls


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
            spec = env_text(self.extractor_variable) if self.extractor_variable else None
            self._extractor = resolve_callable(spec, self.extractor_variable) if spec else None
        return self._extractor

    # --- hooks (override) -----------------------------------------------------------
    def span_name(self, name: str) -> str:
        return name

    def start_attributes(self, call: "Call") -> dict[str, Any]:
        return {}

    def enter(self, call: "Call", ctx: Any) -> Any:
        """Return the context the function runs in (roles may add values)."""
        return ctx

    def finish(self, call: "Call", result: Any) -> None:
        """Read the result, set attributes, record metrics (result may be MISSING)."""

    def failed(self, call: "Call", error: BaseException) -> None:
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


def _guard(what: str, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - ours must never break the app
        warn_once(f"agent-telemetry:{what}", f"agent telemetry ({what}) failed ({error!r}); continuing without it")
        return None


def begin(role: Role, name: str, args: tuple = (), kwargs: dict | None = None, extractor: Any = None) -> Call | None:
    """Start the span of one call; None if telemetry could not start (the call then runs untraced)."""

    def start() -> Call:
        call = Call(role, name, args, kwargs or {}, extractor if extractor is not None else role.default_extractor())
        attributes = role.start_attributes(call)
        call.span = role.tracer.start_span(role.span_name(name), kind=role.span_kind, attributes=attributes)
        call.context = role.enter(call, trace.set_span_in_context(call.span))
        call.started = time.perf_counter()
        return call

    return _guard(f"{role.role} start", start)


def end(call: Call | None, result: Any = MISSING, error: BaseException | None = None) -> None:
    """Finish one call: result or error attributes, metrics, span end. Never raises."""
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

    _guard(f"{call.role.role} end", finish)


def _attach(call: Call | None) -> Any:
    if call is None or call.context is None:
        return None
    try:
        return otel_context.attach(call.context)
    except Exception:  # noqa: BLE001
        return None


def _detach(token: Any) -> None:
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
    call = begin(role, name, args, kwargs, extractor)
    token = _attach(call)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        _detach(token)
        end(call, error=error)
        raise
    _detach(token)
    end(call, result)
    return result


async def _call_async(role, name, extractor, wrapped, args, kwargs):
    call = begin(role, name, args, kwargs, extractor)
    token = _attach(call)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        _detach(token)
        end(call, error=error)
        raise
    _detach(token)
    end(call, result)
    return result


def _call_gen(role, name, extractor, wrapped, args, kwargs):
    """A generator that yields what ``wrapped`` yields; the span covers its whole life."""
    call = begin(role, name, args, kwargs, extractor)
    items: list[Any] = []
    token = _attach(call)
    try:
        generator = wrapped(*args, **kwargs)
    except BaseException as error:
        _detach(token)
        end(call, error=error)
        raise
    _detach(token)
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            token = _attach(call)
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
                _detach(token)
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
    call = begin(role, name, args, kwargs, extractor)
    items: list[Any] = []
    token = _attach(call)
    try:
        agen = wrapped(*args, **kwargs)
    except BaseException as error:
        _detach(token)
        end(call, error=error)
        raise
    _detach(token)
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            token = _attach(call)
            try:
                if throw is not None:
                    pending, throw = throw, None
                    item = await agen.athrow(pending)
                else:
                    item = await agen.asend(send)
            except StopAsyncIteration:
                break
            finally:
                _detach(token)
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
        if enabled is not None and not enabled():
            return wrapped(*args, **kwargs)
        how = kind or detected.get("kind")
        if how is None:
            how = detected.setdefault("kind", function_kind(wrapped))
        return _RUNNERS[how](role, name, extractor, wrapped, args, kwargs)

    wrapper.role = role  # type: ignore[attr-defined]
    return wrapper


class AgentInstrumentor(BaseInstrumentor):
    """Base of the agent instrumentors (intent, rag, planner): a subclass lists its roles in ``roles``,
    each with the variable naming its targets (``AGENTWATCH_*_TARGETS``).

    ``_instrument`` binds each role to the providers and wraps its targets; ``_uninstrument``
    unwraps them and unbinds the roles.
    """

    roles: tuple[tuple[Role, str], ...] = ()
    _targets: TargetSet | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instance = None  # BaseInstrumentor's singleton slot: one per subclass, never inherited

    def instrumentation_dependencies(self) -> Collection[str]:
        return []  # instruments the app's own functions, no library

    def _instrument(self, **kwargs: Any) -> None:
        targets = TargetSet()
        for role, variable in self.roles:
            role.bind(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
            for target in parse_targets(variable):
                targets.add(target, lambda t, role=role: make_wrapper(role, t.label, enabled=role.enabled))
        targets.start()
        self._targets = targets

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._targets is not None:
            self._targets.stop()
        self._targets = None
        for role, _variable in self.roles:
            role.bind()


# =================================================================== extraction

_INTENT_KEYS = ("intent", "label", "name", "category", "class_name", "cls", "prediction", "predicted_label")
_CONFIDENCE_KEYS = ("confidence", "score", "probability", "prob", "p")
_ID_KEYS = ("id", "doc_id", "document_id", "uuid", "key", "pk", "chunk_id")
_SCORE_KEYS = ("score", "similarity", "relevance", "relevance_score", "rank_score")
_DISTANCE_KEYS = ("distance",)
_CONTENT_KEYS = ("page_content", "content", "text", "document", "body", "snippet")
_DOCUMENT_LIST_KEYS = ("documents", "docs", "results", "hits", "matches", "items", "chunks", "data")
_VERDICT_BOOL_KEYS = ("accepted", "approved", "ok", "passed", "is_acceptable", "acceptable", "valid", "is_valid")
_VERDICT_KEYS = ("verdict", "decision", "status", "label", "result", "outcome")
_EXPLANATION_KEYS = ("explanation", "feedback", "reason", "rationale", "critique", "comment")
_ACCEPT_WORDS = {"accept", "accepted", "approve", "approved", "pass", "passed", "ok", "okay", "yes", "good", "lgtm", "valid", "true", "done"}
_REJECT_WORDS = {"reject", "rejected", "revise", "needs_revision", "fail", "failed", "no", "bad", "invalid", "false", "retry", "redo"}


def get_field(obj: Any, names: tuple[str, ...]) -> Any:
    """The first of ``names`` found as a mapping key or attribute of ``obj``; MISSING otherwise."""
    if obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return MISSING
    if isinstance(obj, Mapping):
        for name in names:
            if name in obj:
                return obj[name]
        return MISSING
    keys = getattr(obj, "keys", None)
    if callable(keys) and hasattr(obj, "__getitem__") and not isinstance(obj, (list, tuple)):  # sqlite3.Row and friends
        try:
            available = set(keys())
            for name in names:
                if name in available:
                    return obj[name]
        except Exception:  # noqa: BLE001,S110
            pass
    for name in names:
        try:
            value = getattr(obj, name)
        except Exception:  # noqa: BLE001
            continue
        if not callable(value) or isinstance(value, enum.Enum):
            return value
    return MISSING


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_label(value: Any) -> str | None:
    if isinstance(value, enum.Enum):
        value = value.value if isinstance(value.value, str) else value.name
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def extract_intent(result: Any, depth: int = 0) -> tuple[str | None, float | None]:
    """(label, confidence) from a classifier's result; (None, None) when the shape is unknown."""
    if result is MISSING or depth > 3:
        return None, None
    label = as_label(result)
    if label is not None:
        return label, None
    if isinstance(result, (tuple, list)):
        if len(result) == 2:
            first, second = result
            if as_label(first) is not None and not isinstance(second, str) and as_number(second) is not None:
                return as_label(first), as_number(second)
            if as_label(second) is not None and not isinstance(first, str) and as_number(first) is not None:
                return as_label(second), as_number(first)
        # a ranked list of candidates: take the most confident
        best: tuple[str | None, float | None] = (None, None)
        for candidate in result:
            candidate_label, confidence = extract_intent(candidate, depth + 1)
            if candidate_label is None:
                continue
            if best[0] is None or (confidence is not None and (best[1] is None or confidence > best[1])):
                best = (candidate_label, confidence)
        return best
    value = get_field(result, _INTENT_KEYS)
    if value is MISSING:
        return None, None
    confidence = as_number(get_field(result, _CONFIDENCE_KEYS))
    label = as_label(value)
    if label is None:  # nested: {"intent": {"name": ..., "confidence": ...}}
        label, nested_confidence = extract_intent(value, depth + 1)
        confidence = confidence if confidence is not None else nested_confidence
    return label, confidence


@dataclass
class Document:
    id: str | None = None
    score: float | None = None
    content: str | None = None


@dataclass
class Documents:
    documents: list[Document]
    score_kind: str = "similarity"  # or "distance" (lower is better)

    def top_score(self) -> float | None:
        scores = [d.score for d in self.documents if d.score is not None]
        if not scores:
            return None
        return min(scores) if self.score_kind == "distance" else max(scores)


def _one_document(item: Any) -> tuple[Document, bool]:
    """(document, scored_by_distance)."""
    if isinstance(item, str):
        return Document(content=item), False
    if isinstance(item, tuple) and len(item) == 2 and as_number(item[1]) is not None and not isinstance(item[0], (int, float)):
        document, distance = _one_document(item[0])  # LangChain (Document, score)
        document.score = as_number(item[1])
        return document, distance
    doc_id = get_field(item, _ID_KEYS)
    if doc_id is MISSING or doc_id is None:
        metadata = get_field(item, ("metadata",))
        doc_id = get_field(metadata, _ID_KEYS) if metadata is not MISSING else MISSING
    distance = False
    score = as_number(get_field(item, _SCORE_KEYS))
    if score is None:
        score = as_number(get_field(item, _DISTANCE_KEYS))
        distance = score is not None
    content = get_field(item, _CONTENT_KEYS)
    return Document(
        id=None if doc_id is MISSING or doc_id is None or isinstance(doc_id, bool) else str(doc_id),
        score=score,
        content=content if isinstance(content, str) else None,
    ), distance


def _first_query(value: Any) -> Any:
    """chromadb returns one list per query: use the first query's."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        return value[0]
    return value


def extract_documents(result: Any, depth: int = 0) -> Documents | None:
    """Documents (ids, scores, content) from a retriever's result; None when the shape is unknown."""
    if result is MISSING or result is None or depth > 3 or isinstance(result, (str, bytes, bool, int, float)):
        return None
    # chromadb QueryResult / GetResult: {"ids": [[...]], "distances": [[...]], "documents": [[...]]}
    ids = get_field(result, ("ids",))
    if ids is not MISSING and isinstance(ids, (list, tuple)):
        ids = list(_first_query(ids))
        distances = get_field(result, ("distances",))
        distances = list(_first_query(distances)) if isinstance(distances, (list, tuple)) else []
        contents = get_field(result, ("documents",))
        contents = list(_first_query(contents)) if isinstance(contents, (list, tuple)) else []
        documents = [
            Document(
                id=str(doc_id),
                score=as_number(distances[i]) if i < len(distances) else None,
                content=contents[i] if i < len(contents) and isinstance(contents[i], str) else None,
            )
            for i, doc_id in enumerate(ids)
        ]
        return Documents(documents, "distance" if distances else "similarity")
    if isinstance(result, (list, tuple)) or (
        not isinstance(result, Mapping) and hasattr(result, "__iter__") and hasattr(result, "__len__") and get_field(result, _DOCUMENT_LIST_KEYS) is MISSING
    ):
        documents: list[Document] = []
        distance_scored = False
        for item in list(result):
            document, distance = _one_document(item)
            documents.append(document)
            distance_scored = distance_scored or distance
        return Documents(documents, "distance" if distance_scored else "similarity")
    nested = get_field(result, _DOCUMENT_LIST_KEYS)
    if nested is not MISSING and not isinstance(nested, (str, bytes)):
        return extract_documents(nested, depth + 1)
    return None


@dataclass
class Verdict:
    accepted: bool | None = None
    score: float | None = None
    explanation: str | None = None


def _verdict_word(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    label = as_label(value)
    if label is None:
        return None
    word = label.lower().replace("-", "_").replace(" ", "_")
    if word in _ACCEPT_WORDS:
        return True
    if word in _REJECT_WORDS:
        return False
    return None


def extract_verdict(result: Any, depth: int = 0) -> Verdict:
    """A critique verdict from bool / str / tuple / dict / object results; empty Verdict when unknown."""
    if result is MISSING or depth > 3:
        return Verdict()
    word = _verdict_word(result)
    if word is not None:
        return Verdict(word)
    if isinstance(result, (tuple, list)) and result:
        verdict = Verdict(_verdict_word(result[0]))
        for extra in result[1:]:
            if verdict.score is None and as_number(extra) is not None:
                verdict.score = as_number(extra)
            elif verdict.explanation is None and isinstance(extra, str):
                verdict.explanation = extra
        return verdict if verdict.accepted is not None else Verdict()
    accepted = get_field(result, _VERDICT_BOOL_KEYS)
    verdict = Verdict(accepted if isinstance(accepted, bool) else None)
    if verdict.accepted is None:
        value = get_field(result, _VERDICT_KEYS)
        if value is not MISSING:
            verdict.accepted = _verdict_word(value)
            if verdict.accepted is None and not isinstance(value, (str, bool)):
                verdict.accepted = extract_verdict(value, depth + 1).accepted
    verdict.score = as_number(get_field(result, ("score", "rating", "confidence")))
    explanation = get_field(result, _EXPLANATION_KEYS)
    verdict.explanation = explanation if isinstance(explanation, str) else None
    return verdict


_QUERY_KEYS = ("query", "query_text", "question", "text", "q", "message", "prompt", "query_texts")
_TOP_K_KEYS = ("top_k", "k", "n_results", "limit", "max_results", "n")


def query_text(args: tuple, kwargs: dict) -> str | None:
    """The retrieval query: a query-like keyword argument, else the first str positional argument."""
    for key in _QUERY_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return "\n".join(value)
    for value in args:
        if isinstance(value, str):
            return value
    return None


def top_k(kwargs: dict) -> int | None:
    for key in _TOP_K_KEYS:
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
