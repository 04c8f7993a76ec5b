"""
Job-queue instrumentation: depth and oldest-item age of the queues the app names, and of FastAPI's
background tasks.

Zero code: name the queues in ``AGENTWATCH_QUEUE_TARGETS`` (the targets syntax, ``=name`` for
``agentwatch.queue.name``) and run the app under ``opentelemetry-instrument``::

    AGENTWATCH_QUEUE_TARGETS=jobs:PENDING=indexing opentelemetry-instrument python app.py

A target is an ``asyncio.Queue`` or a ``queue.Queue`` (and their ``LifoQueue`` / ``PriorityQueue``
kinds). The depth is ``qsize()``, read when metrics are collected. The age of the oldest waiting item
needs the time each item was put, and the items are the app's: they are not touched. Instead that one
queue instance gets its own ``_put`` / ``_get`` (instance attributes shadowing the class's methods;
both queue kinds call them, under the queue's own mutex for ``queue.Queue``), which keep a deque of
put times beside the items: one ``time.monotonic()`` and one deque operation per put and per get. FIFO
and LIFO queues know which time leaves with which item; a ``PriorityQueue`` reports its depth only.
Items already waiting when the queue is found count as put then.

FastAPI background tasks (Starlette's ``BackgroundTask``, what ``BackgroundTasks.add_task`` and
``Response(background=...)`` create) are the job queue these services have without a broker: every
FastAPI app has them, and they run in the server process after the response is sent, where nothing
else sees them wait. They are measured as the queue ``fastapi.background`` (created and not yet
started; a task of a request that never ran it is forgotten with it) whenever Starlette is imported
by the app; a broker-backed library (Celery, arq, RQ) is not measured here: it is not what these
services use, it needs its broker, and it has its own monitoring (Celery also has an OpenTelemetry
instrumentation upstream).

No targets and no Starlette: nothing is imported or hooked.

API
---
"""

from __future__ import annotations

import collections
import importlib.util
import sys
import threading
import time
import weakref
from collections.abc import Collection
from typing import Any

import wrapt
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

__all__ = ["AgentwatchQueuesInstrumentor", "BACKGROUND"]

SCOPE = "agentwatch.instrumentors.queues"
BACKGROUND = "fastapi.background"
_BACKGROUND_MODULE = "starlette.background"


def _is_queue(obj: Any) -> bool:
    import asyncio
    import queue

    return isinstance(obj, (asyncio.Queue, queue.Queue))


def _order(obj: Any) -> str | None:
    """``fifo``, ``lifo`` or None (priority, or a subclass whose order is unknown)."""
    import asyncio
    import queue

    cls = type(obj)
    for lifo in (asyncio.LifoQueue, queue.LifoQueue):
        if isinstance(obj, lifo):
            return "lifo" if cls._get is lifo._get else None
    for priority in (asyncio.PriorityQueue, queue.PriorityQueue):
        if isinstance(obj, priority):
            return None
    for fifo in (asyncio.Queue, queue.Queue):
        if isinstance(obj, fifo):
            return "fifo" if cls._get is fifo._get and cls._put is fifo._put else None
    return None


class WatchedQueue:
    """One named queue: ``depth()`` and ``oldest_age()`` (None when unknown); ``release()`` undoes our part."""

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.obj = obj
        self.attributes = {sc.QUEUE_NAME: name}
        self.order = _order(obj)
        self.times: collections.deque[float] | None = None
        if self.order is not None:
            times = collections.deque(time.monotonic() for _ in range(obj.qsize()))
            self.times = times
            put, get = obj._put, obj._get  # bound methods of its class
            append, take = times.append, (times.popleft if self.order == "fifo" else times.pop)
            monotonic = time.monotonic

            def _put(item):
                put(item)
                append(monotonic())

            def _get():
                item = get()
                if times:
                    take()
                return item

            obj._put, obj._get = _put, _get

    def depth(self) -> int:
        return int(self.obj.qsize())

    def oldest_age(self) -> float | None:
        if self.times is None:
            return None
        try:
            return max(0.0, time.monotonic() - self.times[0])
        except IndexError:
            return 0.0

    def release(self) -> None:
        for attribute in ("_put", "_get"):
            self.obj.__dict__.pop(attribute, None)


class BackgroundTasks:
    """Starlette ``BackgroundTask`` objects created and not yet started, with their creation times."""

    def __init__(self) -> None:
        self.pending: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.attributes = {sc.QUEUE_NAME: BACKGROUND}

    def created(self, wrapped, instance, args, kwargs):
        wrapped(*args, **kwargs)
        self.pending[instance] = time.monotonic()

    async def started(self, wrapped, instance, args, kwargs):
        self.pending.pop(instance, None)
        return await wrapped(*args, **kwargs)

    def snapshot(self) -> tuple[int, float]:
        times = list(self.pending.values())
        return len(times), (max(0.0, time.monotonic() - min(times)) if times else 0.0)


class _Telemetry:
    def __init__(self, meter_provider: Any) -> None:
        self.watched: list[WatchedQueue] = []
        self.background: BackgroundTasks | None = None
        self.lock = threading.Lock()
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        by_name = sc.CACHE_QUEUE_METRICS_BY_NAME
        by_name[sc.QUEUE_DEPTH_METRIC].create(meter, [self._depths])
        by_name[sc.QUEUE_OLDEST_AGE_METRIC].create(meter, [self._ages])

    def _depths(self, options: CallbackOptions) -> list[Observation]:
        with self.lock:
            watched, background = list(self.watched), self.background
        out = [Observation(depth, queue.attributes) for queue in watched if (depth := _depth(queue)) is not None]
        if background is not None:
            out.append(Observation(background.snapshot()[0], background.attributes))
        return out

    def _ages(self, options: CallbackOptions) -> list[Observation]:
        with self.lock:
            watched, background = list(self.watched), self.background
        out = [Observation(age, queue.attributes) for queue in watched if (age := queue.oldest_age()) is not None]
        if background is not None:
            out.append(Observation(background.snapshot()[1], background.attributes))
        return out


@guarded("queue telemetry (reading a queue)", outcome="that queue is skipped in this collection")
def _depth(queue: WatchedQueue) -> int | None:
    return queue.depth()


class AgentwatchQueuesInstrumentor(BaseInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_queues``."""

    _telemetry: _Telemetry | None = None
    _targets: ObjectTargets | None = None
    _hooked = False
    _wrapped_background = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return []

    def _instrument(self, **kwargs: Any) -> None:
        targets = parse_targets(ev.AGENTWATCH_QUEUE_TARGETS)
        has_starlette = "starlette" in sys.modules or importlib.util.find_spec("starlette") is not None
        if not targets and not has_starlette:
            return
        telemetry = _Telemetry(kwargs.get("meter_provider"))
        AgentwatchQueuesInstrumentor._telemetry = telemetry
        if has_starlette:
            telemetry.background = BackgroundTasks()
            if _BACKGROUND_MODULE in sys.modules:
                self._wrap_background(sys.modules[_BACKGROUND_MODULE])
            elif not AgentwatchQueuesInstrumentor._hooked:
                AgentwatchQueuesInstrumentor._hooked = True
                wrapt.register_post_import_hook(self._on_background_import, _BACKGROUND_MODULE)
        if targets:
            self._targets = ObjectTargets(targets, self._found, self._lost)
            self._targets.start()

    def _on_background_import(self, module: Any) -> None:
        instrumentor = AgentwatchQueuesInstrumentor()  # the singleton: whichever instrument() is current
        if instrumentor._telemetry is not None and instrumentor._telemetry.background is not None:
            instrumentor._wrap_background(module)

    def _wrap_background(self, module: Any) -> None:
        telemetry = self._telemetry
        if telemetry is None or telemetry.background is None or AgentwatchQueuesInstrumentor._wrapped_background:
            return

        def created(wrapped, instance, args, kwargs):
            current = AgentwatchQueuesInstrumentor._telemetry
            if current is None or current.background is None:
                return wrapped(*args, **kwargs)
            return current.background.created(wrapped, instance, args, kwargs)

        def started(wrapped, instance, args, kwargs):
            current = AgentwatchQueuesInstrumentor._telemetry
            if current is None or current.background is None:
                return wrapped(*args, **kwargs)
            return current.background.started(wrapped, instance, args, kwargs)

        wrapt.wrap_function_wrapper(module, "BackgroundTask.__init__", created)
        wrapt.wrap_function_wrapper(module, "BackgroundTask.__call__", started)
        AgentwatchQueuesInstrumentor._wrapped_background = True

    def _found(self, target: Target, obj: Any) -> bool:
        telemetry = self._telemetry
        if telemetry is None:
            return False
        if not _is_queue(obj):
            warn_once(f"target:{target.variable}:{target.spec}",
                      f"{target.variable}: {target.spec!r} is a {type(obj).__name__}, not an asyncio.Queue or "
                      "queue.Queue; not watched")
            return False
        if any(queue.obj is obj for queue in telemetry.watched):
            return False
        with telemetry.lock:
            telemetry.watched.append(WatchedQueue(target.label, obj))
        return True

    def _lost(self, target: Target, obj: Any) -> None:
        telemetry = self._telemetry
        if telemetry is None:
            return
        with telemetry.lock:
            for queue in [q for q in telemetry.watched if q.obj is obj]:
                queue.release()
                telemetry.watched.remove(queue)

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._targets is not None:
            self._targets.stop()
        self._targets = None
        # The BackgroundTask wrappers stay (pass-through without telemetry): the web instrumentor wraps
        # BackgroundTask.__call__ too, and unwrapping removes the outermost layer, whoever's it is.
        if self._telemetry is not None:
            release_all(self._telemetry)
        AgentwatchQueuesInstrumentor._telemetry = None
