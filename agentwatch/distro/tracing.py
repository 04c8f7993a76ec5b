"""agentwatch's span path: the OpenTelemetry SDK's tracer, provider and span, with a lean hot path.

:class:`LeanTracerProvider` is a subclass of the SDK's ``TracerProvider`` whose tracers and spans are
subclasses of the SDK's (``isinstance(span, ReadableSpan)``, every SDK-typed consumer, custom span
processors, exporters and samplers keep working). What it does per span that the SDK's generic path
does not:

- ``start_span`` with the default sampler (``ParentBased(ALWAYS_ON)``) decides as that sampler would
  without building ``SamplingResult`` objects, and builds the ``SpanContext`` and the span's fields
  directly; any other sampler, a not-sampled parent, a disabled tracer goes through the SDK's code.
  The SDK's own span metrics (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``) are recorded as the SDK
  records them when they are on, and skipped (no call) when off.
- ``start_as_current_span`` is a class-based context manager (also a decorator of sync and async
  functions) instead of two nested generator context managers; the context is attached with one
  copy instead of two when the runtime context is the default ``contextvars`` one.
- attribute values that are plain ``str``/``int``/``float``/``bool`` with a non-empty ``str`` key are
  stored without the SDK's generic cleaning when no value-length limit is set; everything else
  (sequences, ``None``, other types, limits, dropped counts, warnings) is the SDK's own code. A span
  has one (re-entrant) lock, shared by its attributes, instead of the SDK's four (span, attributes, events,
  links); its events and links lists are made on the first event or link.
- span processors are called as the SDK calls them (``on_start(span, parent_context=...)``,
  ``_on_ending(span)``, ``on_end(readable_span)``, in the order added), but a processor whose method
  is known to do nothing (the base ``SpanProcessor``'s, ``BatchSpanProcessor``'s and
  ``SimpleSpanProcessor``'s ``on_start`` / ``_on_ending``) is not called, and no ``ReadableSpan``
  is built when no processor has an ``on_end``.

``AGENTWATCH_LEAN_SPANS=false`` makes agentwatch install the stock SDK ``TracerProvider`` instead,
to rule this module out when debugging. ``tests/test_lean_spans.py`` proves the OTLP output is the
same as the stock SDK's for the same API calls.

The attribute rules it mirrors are those of opentelemetry-sdk 1.45 (``_clean_attribute_value``: any
``AnyValue``). An SDK without them (1.44 and older clean attributes with ``_clean_attribute`` and
other rules) gets the stock ``TracerProvider`` from agentwatch instead: :data:`SUPPORTED` is False there.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import attributes as _sdk_attributes
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    Event,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    Tracer,
    TracerProvider,
    _Span,
    sampling,
)
from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

__all__ = ["SUPPORTED", "LeanSpan", "LeanTracer", "LeanTracerProvider", "SpanProcessors"]

#: Whether this SDK cleans attributes as the lean path does (opentelemetry-sdk >= 1.45). Where it does
#: not, agentwatch installs the stock ``TracerProvider`` (configurator) and this module's classes stay
#: unused: nothing here is called at import time.
SUPPORTED = callable(getattr(_sdk_attributes, "_clean_attribute_value", None))
_clean_attribute_value: Any = getattr(_sdk_attributes, "_clean_attribute_value", None)

_logger = logging.getLogger("opentelemetry.sdk.trace")  # the SDK's logger: same lines as the SDK
_attributes_logger = logging.getLogger("opentelemetry.attributes")
_context_logger = logging.getLogger("opentelemetry.context")

_SPAN_KEY = trace_api._SPAN_KEY  # pyright: ignore[reportPrivateUsage, reportPrivateImportUsage] - the key the API stores the current span under
_APISpan = trace_api.Span
_PLAIN = frozenset({str, int, float, bool})  # values the SDK's cleaning returns unchanged (without a length limit)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_UNSET_STATUS = Status(StatusCode.UNSET)
_MAX_TRACE_ID = 2**128 - 1
_MAX_SPAN_ID = 2**64 - 1
_new_object = object.__new__
_new_tuple = tuple.__new__
_getrandbits = random.getrandbits

# Processor methods known to do nothing: such a processor is not called for that step.
_NOOP_ON_START = frozenset({SpanProcessor.on_start, BatchSpanProcessor.on_start, SimpleSpanProcessor.on_start})
_NOOP_ON_ENDING = frozenset({SpanProcessor._on_ending, BatchSpanProcessor._on_ending, SimpleSpanProcessor._on_ending})  # pyright: ignore[reportPrivateUsage]
_NOOP_ON_END = frozenset({SpanProcessor.on_end})


def _does_something(processor: SpanProcessor, method: str, noops: frozenset[Any]) -> bool:
    bound = getattr(processor, method, None)
    return getattr(bound, "__func__", None) not in noops


class SpanProcessors(SynchronousMultiSpanProcessor):
    """The SDK's synchronous multi-processor, which also keeps, per step, the processors that do
    something in it (recomputed whenever the processor tuple changes)."""

    def __init__(self) -> None:
        self._starting: tuple[SpanProcessor, ...] = ()
        self._ending: tuple[SpanProcessor, ...] = ()
        self._ended: tuple[SpanProcessor, ...] = ()
        super().__init__()

    @property  # pyright: ignore[reportIncompatibleVariableOverride]
    def _span_processors(self) -> tuple[SpanProcessor, ...]:  # pyright: ignore[reportIncompatibleVariableOverride]
        return self._all

    @_span_processors.setter
    def _span_processors(self, processors: tuple[SpanProcessor, ...]) -> None:
        # Derived first, then the tuple: a span starting meanwhile sees the old or the new set, never a mix
        # that skips a processor it should call.
        self._starting = tuple(p for p in processors if _does_something(p, "on_start", _NOOP_ON_START))
        self._ending = tuple(p for p in processors if _does_something(p, "_on_ending", _NOOP_ON_ENDING))
        self._ended = tuple(p for p in processors if _does_something(p, "on_end", _NOOP_ON_END))
        self._all = processors

    def on_start(self, span: Any, parent_context: context_api.Context | None = None) -> None:
        for processor in self._starting:
            processor.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Any) -> None:
        for processor in self._ending:
            processor._on_ending(span)  # pyright: ignore[reportPrivateUsage]

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._ended:
            processor.on_end(span)


class _LeanAttributes(BoundedAttributes):
    """The span's ``BoundedAttributes``, sharing the span's lock; ``_put``/``_put_many`` run under it."""

    @classmethod
    def create(cls, maxlen: int | None, max_value_len: int | None, lock: Any) -> _LeanAttributes:
        attributes = _new_object(cls)
        attributes.__dict__ = {  # a literal: cheaper than __init__ or keyword arguments
            "_dict": {}, "maxlen": maxlen, "dropped": 0, "max_value_len": max_value_len, "_lock": lock, "_immutable": False,
        }
        return attributes

    def _put(self, key: str, value: types.AnyValue) -> None:
        """``BoundedAttributes.__setitem__``, caller holding the lock."""
        maxlen = self.maxlen
        if maxlen == 0:
            self.dropped += 1
            return
        if type(key) is not str or not key:
            if not key or not isinstance(key, str):
                _attributes_logger.warning(
                    "invalid key `%s`. must be non-empty string. Dropping key from attributes.", key
                )
                self.dropped += 1
                return
        if type(value) not in _PLAIN or (self.max_value_len is not None and type(value) is str):
            value = _clean_attribute_value(value, self.max_value_len)
        self._store(key, value)

    def _put_many(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """``BoundedAttributes._set_items``, caller holding the lock (or the only one holding the object)."""
        maxlen = self.maxlen
        if maxlen == 0:
            self.dropped += len(attributes)
            return
        max_value_len = self.max_value_len
        cleaned: Mapping[str, types.AnyValue] = attributes
        for key, value in attributes.items():
            if type(key) is not str or not key or type(value) not in _PLAIN or (max_value_len is not None and type(value) is str):
                cleaned = self._cleaned(attributes)
                break
        stored = self._dict
        if maxlen is None or len(stored) + len(cleaned) <= maxlen:  # nothing can be evicted
            if not stored:
                stored.update(cleaned)
                return
            for key, value in cleaned.items():
                if key in stored:
                    del stored[key]
                stored[key] = value
            return
        for key, value in cleaned.items():
            self._store(key, value)

    def _cleaned(self, attributes: Mapping[str, types.AnyValue]) -> dict[str, types.AnyValue]:
        """``_clean_attribute_value(attributes, max_value_len)`` called only for what needs it: the same
        dict, the same warnings in the same order; counts what it dropped."""
        max_value_len = self.max_value_len
        cleaned: dict[str, types.AnyValue] = {}
        for key, value in attributes.items():
            if type(key) is str and key:
                if type(value) not in _PLAIN or (max_value_len is not None and type(value) is str):
                    value = _clean_attribute_value(value, max_value_len)
                cleaned[key] = value
            else:  # empty, None or not a str: the SDK's key rules, on this one pair
                cleaned.update(_clean_attribute_value({key: value}, max_value_len))
        self.dropped += len(attributes) - len(cleaned)
        return cleaned

    def _store(self, key: str, value: types.AnyValue) -> None:
        """``BoundedAttributes._setitem_locked``."""
        stored = self._dict
        if key in stored:
            del stored[key]
        maxlen = self.maxlen
        if maxlen is not None and len(stored) >= maxlen:
            _attributes_logger.warning(
                "Attributes dict is full. Dropping the oldest key-value pair from attributes to make space for the new key-value pair.",
            )
            del stored[next(iter(stored))]
            self.dropped += 1
        stored[key] = value


class _NoItems(BoundedList):
    """The events or links of a span that has none yet: one shared, empty, read-only list (the SDK makes
    two ``BoundedList`` objects, each with a lock, per span). ``LeanSpan`` replaces it on the first add."""

    def __init__(self) -> None:
        super().__init__(0)

    def __iter__(self) -> Any:  # empty for ever: no need for the lock every reader would share
        return iter(())

    def append(self, item: Any) -> None:
        raise TypeError("the shared empty list of a span cannot be appended to; use Span.add_event/add_link")

    def extend(self, seq: Any) -> None:
        raise TypeError("the shared empty list of a span cannot be extended; use Span.add_event/add_link")


_NO_ITEMS = _NoItems()


class LeanSpan(_Span):
    """The SDK's span with a lean start, end and attribute path (see the module docstring)."""

    def _new_events(self) -> BoundedList:
        return _NO_ITEMS

    def _new_links(self, links: Sequence[trace_api.Link]) -> BoundedList:
        return super()._new_links(links) if links else _NO_ITEMS

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        # The SDK's: immutable attributes cleaned under the event limits, then _add_event (which warns if ended).
        limits = self._limits
        event_attributes = _LeanAttributes.create(limits.max_event_attributes, limits.max_attribute_length, self._lock)
        if attributes:
            event_attributes._put_many(attributes)  # a new object no other thread sees: no lock needed
        event_attributes._immutable = True
        self._add_event(Event(name=name, attributes=event_attributes, timestamp=timestamp))

    def _add_event(self, event: Any) -> None:  # pyright: ignore[reportIncompatibleMethodOverride]
        # The SDK's (decorated with _check_span_ended), making the span's own list on the first event.
        with self._lock:
            if self._end_time is None:
                events = self._events
                if events is _NO_ITEMS:
                    events = self._events = BoundedList(self._limits.max_events)
                events.append(event)  # pyright: ignore[reportAttributeAccessIssue]
                return
        _logger.warning("Tried calling %s on an ended span.", "_add_event")

    def _add_link(self, link: trace_api.Link) -> None:  # pyright: ignore[reportIncompatibleMethodOverride]
        with self._lock:
            if self._end_time is None:
                links = self._links
                if links is _NO_ITEMS:
                    links = self._links = BoundedList(self._limits.max_links)
                links.append(link)  # pyright: ignore[reportAttributeAccessIssue]
                return
        _logger.warning("Tried calling %s on an ended span.", "_add_link")

    def get_span_context(self) -> SpanContext:
        return self._context  # pyright: ignore[reportReturnType] - always set for a started span

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Setting attribute on ended span.")
                return
            attributes = self._attributes
            if type(attributes) is _LeanAttributes:
                attributes._put(key, value)
            else:  # replaced by someone: the SDK's way
                attributes[key] = value  # pyright: ignore[reportOptionalSubscript, reportIndexIssue]

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Setting attribute on ended span.")
                return
            own = self._attributes
            if type(own) is _LeanAttributes:
                own._put_many(attributes)
            else:
                own._set_items(attributes)  # pyright: ignore[reportOptionalMemberAccess, reportAttributeAccessIssue]

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._start_time is None:
                raise RuntimeError("Calling end() on a not started span.")
            if self._end_time is not None:
                _logger.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
            self._attributes._immutable = True  # pyright: ignore[reportAttributeAccessIssue, reportOptionalMemberAccess]

        if self._record_end_metrics:
            self._record_end_metrics()
        processors = self._span_processor
        if type(processors) is SpanProcessors:
            for processor in processors._ending:
                processor._on_ending(self)  # pyright: ignore[reportPrivateUsage]
            ended = processors._ended
            if ended:
                readable = self._readable_span()
                for processor in ended:
                    processor.on_end(readable)
        else:
            processors._on_ending(self)  # pyright: ignore[reportPrivateUsage]
            processors.on_end(self._readable_span())

    def _readable_span(self) -> ReadableSpan:
        # The SDK's ReadableSpan(...) with the same fields, without its keyword-argument call.
        readable = _new_object(ReadableSpan)
        readable.__dict__ = {
            "_name": self._name,
            "_context": self._context,
            "_kind": self._kind,
            "_instrumentation_info": self._instrumentation_info,
            "_instrumentation_scope": self._instrumentation_scope,
            "_parent": self._parent,
            "_start_time": self._start_time,
            "_end_time": self._end_time,
            "_attributes": self._attributes,
            "_events": self._events,
            "_links": self._links,
            "_resource": self._resource,
            "_status": self._status,
        }
        return readable


def _current_context() -> Context:
    runtime = context_api._RUNTIME_CONTEXT  # pyright: ignore[reportPrivateUsage]
    if type(runtime) is ContextVarsRuntimeContext:
        return runtime._current_context.get()  # pyright: ignore[reportPrivateUsage]
    return context_api.get_current()


def _attach_span(span: trace_api.Span) -> Any:
    """``context.attach(context.set_value(_SPAN_KEY, span))`` with one copy of the current context."""
    runtime = context_api._RUNTIME_CONTEXT  # pyright: ignore[reportPrivateUsage]
    if type(runtime) is ContextVarsRuntimeContext:
        variable = runtime._current_context  # pyright: ignore[reportPrivateUsage]
        new = Context(variable.get())
        dict.__setitem__(new, _SPAN_KEY, span)
        return variable.set(new)
    return context_api.attach(context_api.set_value(_SPAN_KEY, span))


def _detach(token: Any) -> None:
    runtime = context_api._RUNTIME_CONTEXT  # pyright: ignore[reportPrivateUsage]
    if type(runtime) is ContextVarsRuntimeContext:
        try:
            runtime._current_context.reset(token)  # pyright: ignore[reportPrivateUsage]
        except Exception:
            _context_logger.exception("Failed to detach context")
        return
    context_api.detach(token)


class _CurrentSpan:
    """What ``start_as_current_span`` returns: the SDK's ``start_span`` + ``use_span`` generator pair as
    one context manager (the same steps in the same order), also a decorator like the SDK's."""

    __slots__ = (
        "_tracer", "_name", "_context", "_kind", "_attributes", "_links", "_start_time",
        "_record_exception", "_set_status_on_exception", "_end_on_exit", "_span", "_token",
    )

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: types.Attributes,
        links: Sequence[trace_api.Link] | None,
        start_time: int | None,
        record_exception: bool,
        set_status_on_exception: bool,
        end_on_exit: bool,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._kind = kind
        self._attributes = attributes
        self._links = links
        self._start_time = start_time
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._end_on_exit = end_on_exit

    def __enter__(self) -> trace_api.Span:
        span = self._tracer.start_span(
            self._name, self._context, self._kind, self._attributes, self._links, self._start_time,
            self._record_exception, self._set_status_on_exception,
        )
        self._span = span
        self._token = _attach_span(span)
        return span

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        span = self._span
        try:
            _detach(self._token)
            if error is None and kind is not None:
                error = kind()  # as contextlib does for a bare type
            # use_span records Exception only (not GeneratorExit, KeyboardInterrupt...).
            if isinstance(error, Exception) and isinstance(span, _APISpan) and span.is_recording():
                if self._record_exception:
                    span.record_exception(error)
                if self._set_status_on_exception:
                    span.set_status(Status(status_code=StatusCode.ERROR, description=f"{type(error).__name__}: {error}"))
        finally:
            if self._end_on_exit:
                span.end()
        return False

    def _recreate(self) -> _CurrentSpan:
        return _CurrentSpan(
            self._tracer, self._name, self._context, self._kind, self._attributes, self._links, self._start_time,
            self._record_exception, self._set_status_on_exception, self._end_on_exit,
        )

    def __call__(self, function: Any) -> Any:
        """As a decorator: one span per call; an async function's span ends when its coroutine does."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._recreate():
                    return await function(*args, **kwargs)

            return async_wrapper

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._recreate():
                return function(*args, **kwargs)

        return wrapper


def _is_default_sampler(sampler: Any) -> bool:
    """``ParentBased(ALWAYS_ON)`` with the default delegates (what ``parentbased_always_on`` builds)."""
    return (
        type(sampler) in (sampling.ParentBased, sampling._ParentBasedAlwaysOn)  # pyright: ignore[reportPrivateUsage]
        and sampler._root is sampling.ALWAYS_ON
        and sampler._remote_parent_sampled is sampling.ALWAYS_ON
        and sampler._local_parent_sampled is sampling.ALWAYS_ON
        and sampler._remote_parent_not_sampled is sampling.ALWAYS_OFF
        and sampler._local_parent_not_sampled is sampling.ALWAYS_OFF
    )


class LeanTracer(Tracer):
    """The SDK's tracer with a lean ``start_span`` for the default sampler (see the module docstring)."""

    _checked_sampler: Any = None
    _fast_sampler: bool = False
    _span_template: dict[str, Any] | None = None

    def _new_span_template(self, sampler: Any) -> dict[str, Any]:
        """The fields of the SDK's span (the names its ``__init__`` sets) that are the same for every span
        of this tracer until its sampler, resource, processors or limits change."""
        return {
            "_name": None,
            "_context": None,
            "_kind": None,
            "_instrumentation_info": self.instrumentation_info,
            "_instrumentation_scope": self._instrumentation_scope,
            "_parent": None,
            "_start_time": None,
            "_end_time": None,
            "_attributes": None,
            "_events": _NO_ITEMS,
            "_links": _NO_ITEMS,
            "_resource": self.resource,
            "_status": _UNSET_STATUS,
            "_sampler": sampler,
            "_trace_config": None,
            "_record_exception": True,
            "_set_status_on_exception": True,
            "_span_processor": self.span_processor,
            "_limits": self._span_limits,
            "_lock": None,
            "_record_end_metrics": None,
        }

    def start_as_current_span(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Any:
        return _CurrentSpan(
            self, name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception, end_on_exit
        )

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        sampler = self.sampler
        if sampler is not self._checked_sampler:  # the sampler is a public attribute: re-check when it changes
            self._fast_sampler = _is_default_sampler(sampler)
            self._checked_sampler = sampler
        if not self._fast_sampler or not self._tracer_config.is_enabled:
            return super().start_span(name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception)

        # get_current_span(context).get_span_context()
        parent = (context if context is not None else _current_context()).get(_SPAN_KEY)
        parent_context = None
        if type(parent) is LeanSpan:  # the usual parent: one of ours (skips two ABC isinstance checks)
            parent_context = parent._context
        elif parent is not None and isinstance(parent, _APISpan):
            parent_context = parent.get_span_context()
            if parent_context is not None and not isinstance(parent_context, SpanContext):
                raise TypeError("parent_span_context must be a SpanContext or None.")

        generator = self.id_generator
        random_ids = type(generator) is RandomIdGenerator
        if parent_context is None or not parent_context.is_valid:
            parent_context = None
            if random_ids:
                trace_id = _getrandbits(128)
                while not trace_id:
                    trace_id = _getrandbits(128)
                flags = _SAMPLED_RANDOM
            else:
                trace_id = generator.generate_trace_id()
                flags = _SAMPLED_RANDOM if generator.is_trace_id_random() else _SAMPLED
            trace_state = DEFAULT_TRACE_STATE
        else:
            parent_flags = parent_context.trace_flags
            if not parent_flags & TraceFlags.SAMPLED or not isinstance(parent_flags, TraceFlags):
                # ParentBased -> ALWAYS_OFF (a non-recording span), or an odd parent: the SDK's path.
                return super().start_span(name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception)
            trace_id = parent_context.trace_id
            flags = _SAMPLED_RANDOM if parent_flags & TraceFlags.RANDOM_TRACE_ID else _SAMPLED
            trace_state = parent_context.trace_state
            if trace_state is None:
                trace_state = DEFAULT_TRACE_STATE
        if random_ids:
            span_id = _getrandbits(64)
            while not span_id:
                span_id = _getrandbits(64)
            valid = True
        else:
            span_id = generator.generate_span_id()
            valid = 0 < trace_id <= _MAX_TRACE_ID and 0 < span_id <= _MAX_SPAN_ID
        span_context = _new_tuple(SpanContext, (trace_id, span_id, False, flags, trace_state, valid))

        metrics = self._tracer_metrics
        record_end_metrics = (
            None if type(metrics) is NoOpTracerMetrics else metrics.start_span(parent_context, sampling.Decision.RECORD_AND_SAMPLE)
        )

        template = self._span_template
        processors = self.span_processor
        if (
            template is None
            or template["_sampler"] is not sampler
            or template["_resource"] is not self.resource
            or template["_span_processor"] is not processors
            or template["_limits"] is not self._span_limits
        ):
            template = self._span_template = self._new_span_template(sampler)
        limits = self._span_limits
        # Re-entrant: the span and its attributes share it, and a value's __str__ (called under it while cleaning)
        # may read the attributes, whose iteration takes the attributes' lock while they are mutable.
        lock = threading.RLock()
        span_attributes = _LeanAttributes.create(limits.max_span_attributes, limits.max_span_attribute_length, lock)
        span = _new_object(LeanSpan)
        fields = template.copy()  # what every span of this tracer shares, then its own
        fields["_name"] = name
        fields["_context"] = span_context
        fields["_kind"] = kind
        fields["_parent"] = parent_context
        fields["_attributes"] = span_attributes
        fields["_record_exception"] = record_exception
        fields["_set_status_on_exception"] = set_status_on_exception
        fields["_lock"] = lock
        fields["_record_end_metrics"] = record_end_metrics
        span.__dict__ = fields  # pyright: ignore[reportAttributeAccessIssue] - a plain instance dict
        if attributes:
            span_attributes._put_many(attributes)
        if links:
            span._links = span._new_links(links)

        # span.start(start_time, parent_context=context), on a span no other thread has seen yet
        span._start_time = start_time if start_time is not None else time_ns()
        if type(processors) is SpanProcessors:
            for processor in processors._starting:
                processor.on_start(span, parent_context=context)
        else:
            processors.on_start(span, parent_context=context)
        return span


class LeanTracerProvider(TracerProvider):
    """The SDK's ``TracerProvider`` whose tracers are :class:`LeanTracer` (see the module docstring).

    Takes the same arguments; without ``active_span_processor`` it uses :class:`SpanProcessors`."""

    def __init__(  # the SDK's signature
        self,
        sampler: sampling.Sampler | None = None,
        resource: Resource | None = None,
        shutdown_on_exit: bool = True,
        active_span_processor: SynchronousMultiSpanProcessor | ConcurrentMultiSpanProcessor | None = None,
        id_generator: IdGenerator | None = None,
        span_limits: SpanLimits | None = None,
        **keywords: Any,  # meter_provider, _tracer_configurator
    ) -> None:
        super().__init__(
            sampler, resource, shutdown_on_exit, active_span_processor or SpanProcessors(), id_generator, span_limits,
            **keywords,
        )

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace_api.Tracer:
        tracer = super().get_tracer(*args, **kwargs)
        if type(tracer) is Tracer:  # made by the SDK's get_tracer: same state, lean methods
            tracer.__class__ = LeanTracer
        return tracer
