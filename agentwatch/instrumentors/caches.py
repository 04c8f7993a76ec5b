"""
Cache instrumentation: hits, misses, size and capacity of the caches the app names.

Zero code: name the caches in ``AGENTWATCH_CACHE_TARGETS`` (the syntax of the agent targets,
``module:attribute`` or ``module:Class.attribute``, ``=name`` for ``agentwatch.cache.name``; the
default name is ``module.attribute``) and run the app under ``opentelemetry-instrument``::

    AGENTWATCH_CACHE_TARGETS=knowledge:lookup=kb-lookup,prices:PRICE_CACHE opentelemetry-instrument python app.py

What a target may name, and what it costs:

- anything with ``cache_info()`` -- ``functools.lru_cache`` / ``functools.cache`` functions,
  cachetools ``@cached(..., info=True)`` functions, async-lru's ``alru_cache``: ``cache_info()`` is
  read when metrics are collected (observable instruments). Nothing is wrapped: **no cost per call**.
- a cachetools cache (``LRUCache``, ``TTLCache``, ... any ``cachetools.Cache``), or a cachetools
  ``@cached`` function without ``info`` (its ``.cache``): cachetools counts nothing, so the one instance
  gets a counting subclass of its own class (its ``__class__`` is swapped back on uninstrument;
  ``isinstance`` holds, the data stays where it is). A lookup (``cache[key]``, ``cache.get``) costs one
  ``next()`` of an ``itertools.count`` more, a miss two.
- an aiocache cache or aiocache ``@cached`` function (its ``.cache``): that instance's ``get`` and
  ``multi_get`` are counted (a value of ``None`` is a miss, as aiocache's own decorator reads it); no size.

Metrics (catalogue: :data:`agentwatch.semconv.CACHE_QUEUE_METRICS`): ``agentwatch.cache.lookups``
(``agentwatch.cache.result`` = ``hit``/``miss``), ``agentwatch.cache.size``, ``agentwatch.cache.max_size``.
The hit ratio is ``hit / (hit + miss)`` over a window (the bundled dashboard and the
``AgentwatchCacheHitRatioCollapsed`` alert read it so). ``cache_clear()`` resets ``cache_info()``; the
exported counter stays monotonic (the reset is added back).

No targets: nothing is imported, nothing is hooked (the instrumentor returns at once). The libraries
are never imported by agentwatch: an object is recognised by its type only where its library is
already imported by the app.

Usage
-----

.. code:: python

    from agentwatch.instrumentors.caches import AgentwatchCachesInstrumentor

    AgentwatchCachesInstrumentor().instrument()   # reads AGENTWATCH_CACHE_TARGETS

API
---
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.metrics import CallbackOptions, Observation

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import guarded
from agentwatch.instrumentors._agents.targets import Target, parse_targets
from agentwatch.instrumentors._objects import ObjectTargets, release_all
from agentwatch.version import __version__

__all__ = ["AgentwatchCachesInstrumentor", "watch"]

SCOPE = "agentwatch.instrumentors.caches"
_SENTINEL = object()


def _count_value(counter: itertools.count) -> int:
    """The next value an ``itertools.count`` would give (its repr is ``count(n)``), without taking it."""
    text = repr(counter)
    return int(text[text.index("(") + 1 : -1])


class _Monotonic:
    """Keeps a counter that the source may reset (``cache_clear()``) monotonic: a drop adds the last value back."""

    __slots__ = ("base", "last")

    def __init__(self) -> None:
        self.base = 0
        self.last = 0

    def __call__(self, value: int) -> int:
        if value < self.last:
            self.base += self.last
        self.last = value
        return self.base + value


class Watched:
    """One named cache: ``read()`` -> (hits, misses, size or None, maxsize or None); ``release()`` undoes our part."""

    kind = ""

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.obj = obj
        self.attributes = {sc.CACHE_NAME: name}
        self.hit_attributes = {sc.CACHE_NAME: name, sc.CACHE_RESULT: "hit"}
        self.miss_attributes = {sc.CACHE_NAME: name, sc.CACHE_RESULT: "miss"}

    def read(self) -> tuple[int, int, Any, Any]:
        raise NotImplementedError

    def release(self) -> None:
        """Undo what watching changed (nothing for most kinds)."""


class InfoCache(Watched):
    """Anything with ``cache_info()`` (``functools.lru_cache``, cachetools ``info=True``, async-lru)."""

    kind = "cache_info"

    def __init__(self, name: str, obj: Any) -> None:
        super().__init__(name, obj)
        self.hits, self.misses = _Monotonic(), _Monotonic()
        self.cleared = False
        clear = getattr(obj, "cache_clear", None)
        if callable(clear):
            # A clear between two collections may climb back past the last reading before the next one: the
            # instance's own cache_clear (an attribute shadowing the method) counts what it is about to reset.
            def cache_clear(*args: Any, **kwargs: Any) -> Any:
                self._fold()
                return clear(*args, **kwargs)

            try:
                obj.cache_clear = cache_clear
                self.cleared = True
            except (AttributeError, TypeError):
                pass  # no instance attributes: a clear is caught by the next reading dropping, as far as it can be

    def _fold(self) -> None:
        try:
            info = self.obj.cache_info()
            for counter, value in ((self.hits, int(info.hits)), (self.misses, int(info.misses))):
                counter.base += max(value, counter.last)
                counter.last = 0
        except Exception:  # noqa: BLE001,S110 - the app's clear goes on whatever happens here
            pass

    def read(self) -> tuple[int, int, Any, Any]:
        info = self.obj.cache_info()
        return (self.hits(int(info.hits)), self.misses(int(info.misses)),
                getattr(info, "currsize", None), getattr(info, "maxsize", None))

    def release(self) -> None:
        if self.cleared:
            vars(self.obj).pop("cache_clear", None)


class _Counts:
    __slots__ = ("lookups", "misses")

    def __init__(self) -> None:
        self.lookups = itertools.count()
        self.misses = itertools.count()


def _counting_class(base: type, counts: _Counts) -> type:
    """A subclass of ``base`` for one instance, counting its lookups and misses (``itertools.count``: no lock,
    ``next()`` is atomic under the GIL)."""
    base_getitem, base_missing, base_get = base.__getitem__, base.__missing__, base.get  # pyright: ignore[reportAttributeAccessIssue]
    lookups, misses = counts.lookups, counts.misses

    def __getitem__(self, key):
        next(lookups)
        return base_getitem(self, key)

    def __missing__(self, key):
        next(misses)
        return base_missing(self, key)

    def get(self, key, default=None):
        value = base_get(self, key, _SENTINEL)  # a hit goes through __getitem__ above
        if value is _SENTINEL:
            next(lookups)
            next(misses)
            return default
        return value

    namespace = {"__slots__": (), "__getitem__": __getitem__, "__missing__": __missing__, "get": get,
                 "__module__": base.__module__, "__qualname__": base.__qualname__, "_agentwatch_counted": True}
    return type(base.__name__, (base,), namespace)


class CountedCache(Watched):
    """A cachetools cache: its own instance gets a counting subclass of its class."""

    kind = "cachetools"

    def __init__(self, name: str, obj: Any) -> None:
        super().__init__(name, obj)
        self.counts = _Counts()
        self.original = type(obj)
        obj.__class__ = _counting_class(self.original, self.counts)

    def read(self) -> tuple[int, int, Any, Any]:
        lookups, misses = _count_value(self.counts.lookups), _count_value(self.counts.misses)
        return lookups - misses, misses, self.obj.currsize, self.obj.maxsize

    def release(self) -> None:
        if getattr(type(self.obj), "_agentwatch_counted", False):
            self.obj.__class__ = self.original


class AioCache(Watched):
    """An aiocache cache: that instance's ``get`` / ``multi_get`` counted (instance attributes shadow the methods)."""

    kind = "aiocache"

    def __init__(self, name: str, obj: Any) -> None:
        super().__init__(name, obj)
        self.counts = _Counts()
        lookups, misses = self.counts.lookups, self.counts.misses
        get, multi_get = obj.get, obj.multi_get

        async def counted_get(key, default=None, *args, **kwargs):
            value = await get(key, default, *args, **kwargs)
            next(lookups)
            if value is None or value is default:
                next(misses)
            return value

        async def counted_multi_get(keys, *args, **kwargs):
            values = await multi_get(keys, *args, **kwargs)
            for value in values:
                next(lookups)
                if value is None:
                    next(misses)
            return values

        obj.get, obj.multi_get = counted_get, counted_multi_get

    def read(self) -> tuple[int, int, Any, Any]:
        lookups, misses = _count_value(self.counts.lookups), _count_value(self.counts.misses)
        return lookups - misses, misses, None, None

    def release(self) -> None:
        for attribute in ("get", "multi_get"):
            self.obj.__dict__.pop(attribute, None)


def _is_cachetools_cache(obj: Any) -> bool:
    module = sys.modules.get("cachetools")
    return module is not None and isinstance(obj, module.Cache)


def _is_aiocache_cache(obj: Any) -> bool:
    module = sys.modules.get("aiocache.base")
    return module is not None and isinstance(obj, module.BaseCache)


def watch(name: str, obj: Any) -> Watched | None:
    """The :class:`Watched` for ``obj`` (see the module docstring for what is accepted); None if it is no cache."""
    if getattr(type(obj), "_agentwatch_counted", False):
        return None  # already counted (named twice)
    info = getattr(obj, "cache_info", None)
    if callable(info):
        return InfoCache(name, obj)
    if _is_cachetools_cache(obj):
        return CountedCache(name, obj)
    if _is_aiocache_cache(obj):
        return AioCache(name, obj)
    inner = getattr(obj, "cache", None)  # cachetools / aiocache @cached functions keep their cache here
    if inner is not None and inner is not obj and (_is_cachetools_cache(inner) or _is_aiocache_cache(inner)):
        return watch(name, inner)
    return None


class _Telemetry:
    """The observable instruments of one ``instrument()`` and the caches they read."""

    def __init__(self, meter_provider: Any) -> None:
        self.watched: list[Watched] = []
        self.lock = threading.Lock()
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        by_name = sc.CACHE_QUEUE_METRICS_BY_NAME
        by_name[sc.CACHE_LOOKUPS_METRIC].create(meter, [self._lookups])
        by_name[sc.CACHE_SIZE_METRIC].create(meter, [self._sizes])
        by_name[sc.CACHE_MAX_SIZE_METRIC].create(meter, [self._max_sizes])

    def _readings(self) -> list[tuple[Watched, tuple[int, int, Any, Any]]]:
        with self.lock:
            watched = list(self.watched)
        readings = []
        for cache in watched:
            reading = _read(cache)
            if reading is not None:
                readings.append((cache, reading))
        return readings

    def _lookups(self, options: CallbackOptions) -> list[Observation]:
        out = []
        for cache, (hits, misses, _size, _max) in self._readings():
            out.append(Observation(hits, cache.hit_attributes))
            out.append(Observation(misses, cache.miss_attributes))
        return out

    def _sizes(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(size, cache.attributes) for cache, (_h, _m, size, _x) in self._readings()
                if isinstance(size, (int, float)) and not isinstance(size, bool)]

    def _max_sizes(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(maxsize, cache.attributes) for cache, (_h, _m, _s, maxsize) in self._readings()
                if isinstance(maxsize, (int, float)) and not isinstance(maxsize, bool)]


@guarded("cache telemetry (reading a cache)", outcome="that cache is skipped in this collection")
def _read(cache: Watched) -> tuple[int, int, Any, Any] | None:
    return cache.read()


class AgentwatchCachesInstrumentor(BaseInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_caches``."""

    _telemetry: _Telemetry | None = None
    _targets: ObjectTargets | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return []  # the app's own objects: functools always, cachetools / aiocache only if the app uses them

    def _instrument(self, **kwargs: Any) -> None:
        targets = parse_targets(ev.AGENTWATCH_CACHE_TARGETS)
        if not targets:
            return  # nothing named: nothing hooked, no instrument created
        telemetry = _Telemetry(kwargs.get("meter_provider"))
        self._telemetry = telemetry

        def found(target: Target, obj: Any) -> bool:
            inner = getattr(obj, "cache", None)
            with telemetry.lock:
                twice = [w for w in telemetry.watched if w.obj is obj or (inner is not None and w.obj is inner)]
            if twice:
                warn_once(f"target:{target.variable}:{target.spec}",
                          f"{target.variable}: {target.spec!r} is the cache already named {twice[0].name!r}; "
                          "it is counted once, under that name")
                return False
            watched = watch(target.label, obj)
            if watched is None:
                warn_once(f"target:{target.variable}:{target.spec}",
                          f"{target.variable}: {target.spec!r} is a {type(obj).__name__}, not a cache agentwatch can read "
                          "(an lru_cache function, anything with cache_info(), a cachetools or aiocache cache); not watched")
                return False
            with telemetry.lock:
                telemetry.watched.append(watched)
            return True

        def lost(target: Target, obj: Any) -> None:
            with telemetry.lock:
                for watched in [w for w in telemetry.watched if w.obj is obj or getattr(obj, "cache", None) is w.obj]:
                    watched.release()
                    telemetry.watched.remove(watched)

        self._targets = ObjectTargets(targets, found, lost)
        self._targets.start()

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._targets is not None:
            self._targets.stop()
        self._targets = None
        if self._telemetry is not None:
            release_all(self._telemetry)
        self._telemetry = None
