"""
chromadb instrumentation: the vector store's collection calls as OpenTelemetry
database CLIENT spans, with duration and result-count metrics and a gauge of
each collection's size.

Every call of ``Collection`` and ``AsyncCollection`` -- ``add``, ``get``,
``peek``, ``query``, ``update``, ``upsert``, ``delete``, ``count`` -- becomes a
span ``{db.operation.name} {db.collection.name}`` (``query kb-docs``) under
whatever span is current: the ``retrieval {data source}`` span of
:mod:`agentwatch.instrumentors.rag` when the app's retrieval function queries
chromadb, and the HTTP client spans of an ``HttpClient`` nest under it. It
follows the OpenTelemetry database conventions (stable names only):
``db.system.name=chromadb`` (not one of the conventions' well-known values),
``db.collection.name``, ``db.operation.name``, ``db.namespace``
(``{tenant}|{database}``), ``server.address``/``server.port`` for HTTP clients,
``db.response.returned_rows`` (for ``query`` the results of every query vector
summed), ``error.type`` when the call raised; and the ``agentwatch.vectordb.*``
attributes listed in :mod:`agentwatch.semconv` (queries per call, results
asked per query, records written or deleted).

Metrics: ``db.client.operation.duration`` and ``db.client.response.returned_rows``
(the conventions' histograms and buckets), and the observable gauge
``agentwatch.vectordb.collection.documents``: the record count of every
collection the app has used, counted when metrics are collected. Collections
are held through weak references to their client (a collection the app
deleted or whose client is gone stops being reported); at most
``AGENTWATCH_CHROMADB_MAX_COLLECTIONS`` distinct collections keep their name on
metrics and are counted, later ones count as ``_other`` (never a valid chromadb
name). Counting runs on a helper thread; the gauge's callback waits for it at
most half a second and never raises.

Privacy: embeddings and document texts are never recorded; query texts
(``query_texts``) only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY`` (or
``SPAN_AND_EVENT``), scrubbed and cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``.

Never breaks the app: a failure of ours is reported once and the call runs
as if uninstrumented; the app gets exactly what chromadb returned or raised.

Usage
-----

.. code:: python

    import chromadb
    from agentwatch.instrumentors.chromadb import AgentwatchChromaInstrumentor

    AgentwatchChromaInstrumentor().instrument()

    client = chromadb.EphemeralClient()
    kb = client.get_or_create_collection("kb-docs", embedding_function=None)
    kb.add(ids=["d1", "d2"], embeddings=[[0.1, 0.9], [0.8, 0.2]])   # span "add kb-docs"
    kb.query(query_embeddings=[[0.1, 0.8]], n_results=2)            # span "query kb-docs"

Under ``opentelemetry-instrument`` the entry point ``agentwatch_chromadb`` loads
it where chromadb is installed (``pip install agentwatch[chromadb]``); the
classes are wrapped when chromadb is first imported, so an app that never
imports chromadb pays nothing. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentwatch_chromadb``
switches it off.

API
---
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import inspect
import sys
import threading
import time
import weakref
from collections.abc import Collection as StrCollection
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import wrapt
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation, unwrap
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import guarded, run
from agentwatch.instrumentors._agents.calls import attach, detach
from agentwatch.instrumentors._agents.extract import MISSING
from agentwatch.instrumentors._agents.settings import agent_settings, capture_content, clip
from agentwatch.version import __version__

__all__ = ["AgentwatchChromaInstrumentor"]

#: What it wraps is chromadb 1.x's Collection API; tested with 1.5.9 (the version the `chromadb` extra pins).
_instruments = ("chromadb >= 1.0",)

SCOPE = "agentwatch.instrumentors.chromadb"
SYSTEM = "chromadb"
OTHER = "_other"  # folded collection name: chromadb names start with a letter or digit
OPERATIONS = ("add", "get", "peek", "query", "update", "upsert", "delete", "count")
_CLASSES = (
    ("chromadb.api.models.Collection", "Collection"),
    ("chromadb.api.models.AsyncCollection", "AsyncCollection"),
)
_TAG = "_self_agentwatch_chromadb"
COUNT_WAIT_SECONDS = 0.5  # the gauge callback waits at most this long for fresh counts
COUNT_TIMEOUT_SECONDS = 5.0  # one count of an AsyncCollection on its event loop

# Positional order of the arguments read from each method (chromadb 1.x signatures).
_ADD_ARGS = ("ids", "embeddings", "metadatas", "documents", "images", "uris")
_SIGNATURES = {
    "add": _ADD_ARGS,
    "update": _ADD_ARGS,
    "upsert": _ADD_ARGS,
    "get": ("ids", "where", "limit", "offset", "where_document", "include"),
    "peek": ("limit",),
    "query": ("query_embeddings", "query_texts", "query_images", "query_uris", "ids", "n_results"),
    "delete": ("ids", "where", "where_document", "limit"),
    "count": (),
}
_QUERY_DEFAULT_N_RESULTS = 10
_PEEK_DEFAULT_LIMIT = 10


def collection_limit() -> int:
    """``AGENTWATCH_CHROMADB_MAX_COLLECTIONS`` (a bad value warns once and gives the default, 50)."""
    return agent_settings().chromadb_max_collections


# =================================================================== reading calls


def _argument(operation: str, name: str, args: tuple, kwargs: dict) -> Any:
    if name in kwargs:
        return kwargs[name]
    names = _SIGNATURES.get(operation, ())
    if name in names and names.index(name) < len(args):
        return args[names.index(name)]
    return None


def _depth(value: Any) -> int:
    shape = getattr(value, "shape", None)  # numpy arrays
    if isinstance(shape, tuple):
        return len(shape)
    if isinstance(value, (list, tuple)):
        return 1 + (_depth(value[0]) if value else 0)
    return 0


def _batch_size(value: Any, item_depth: int) -> int | None:
    """How many items a chromadb ``OneOrMany`` argument holds (an embedding is one item of depth 1)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and not value:
        return 0
    if _depth(value) <= item_depth:
        return 1
    shape = getattr(value, "shape", None)
    return int(shape[0]) if isinstance(shape, tuple) else len(value)


def _request_attributes(operation: str, args: tuple, kwargs: dict, capture: Any = None) -> dict[str, Any]:
    """The call's own attributes: counts only (query texts when ``capture``, the content-capture settings, is given)."""
    attributes: dict[str, Any] = {}
    if operation == "query":
        queries = None
        for name, item_depth in (("query_embeddings", 1), ("query_texts", 0), ("query_images", 3), ("query_uris", 0)):
            queries = _batch_size(_argument(operation, name, args, kwargs), item_depth)
            if queries is not None:
                break
        if queries is not None:
            attributes[sc.VECTORDB_QUERY_COUNT] = queries
        n_results = _argument(operation, "n_results", args, kwargs)
        n_results = _QUERY_DEFAULT_N_RESULTS if n_results is None else n_results
        if isinstance(n_results, int) and not isinstance(n_results, bool):
            attributes[sc.VECTORDB_QUERY_N_RESULTS] = n_results
        if capture:
            texts = _argument(operation, "query_texts", args, kwargs)
            texts = [texts] if isinstance(texts, str) else texts
            if isinstance(texts, (list, tuple)) and texts and all(isinstance(t, str) for t in texts):
                attributes[sc.VECTORDB_QUERY_TEXT] = clip("\n".join(texts), capture)
    elif operation in ("get", "peek"):
        limit = _argument(operation, "limit", args, kwargs)
        if limit is None and operation == "peek":
            limit = _PEEK_DEFAULT_LIMIT
        if isinstance(limit, int) and not isinstance(limit, bool):
            attributes[sc.VECTORDB_QUERY_N_RESULTS] = limit
    elif operation in ("add", "update", "upsert"):
        records = _batch_size(_argument(operation, "ids", args, kwargs), 0)
        if records is not None:
            attributes[sc.VECTORDB_RECORDS] = records
    return attributes


def _returned_rows(operation: str, result: Any) -> int | None:
    if operation not in ("query", "get", "peek") or not isinstance(result, Mapping):
        return None
    ids = result.get("ids")
    if not isinstance(ids, (list, tuple)):
        return None
    if operation == "query":
        return sum(len(batch) for batch in ids if isinstance(batch, (list, tuple)))
    return len(ids)


def _deleted(result: Any) -> int | None:
    value = result.get("deleted") if isinstance(result, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Where:
    """Which collection a call is about: names for spans, bounded ones for metrics, what the gauge needs."""

    __slots__ = ("name", "namespace", "server", "key", "span_attributes")

    def __init__(self, instance: Any) -> None:
        name = getattr(instance, "name", None)
        self.name = name if isinstance(name, str) and name else None
        tenant, database = getattr(instance, "tenant", None), getattr(instance, "database", None)
        self.namespace = f"{tenant}|{database}" if isinstance(tenant, str) and isinstance(database, str) else None
        self.server = _server(getattr(instance, "_client", None))
        self.key = (self.server, self.namespace, self.name)
        attributes: dict[str, Any] = {sc.DB_SYSTEM_NAME: SYSTEM}
        if self.name is not None:
            attributes[sc.DB_COLLECTION_NAME] = self.name
        if self.namespace is not None:
            attributes[sc.DB_NAMESPACE] = self.namespace
        if self.server is not None:
            attributes[sc.SERVER_ADDRESS], attributes[sc.SERVER_PORT] = self.server
        self.span_attributes = attributes


def _server(api: Any) -> tuple[str, int] | None:
    """(host, port) of an HTTP client's Chroma server; None for the in-process (local) one."""
    get_url = getattr(api, "get_api_url", None)
    if not callable(get_url):
        return None
    parts = urlsplit(str(get_url()))
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


# ===================================================================== gauge


class _Tracked:
    __slots__ = ("collection_id", "tenant", "database", "attributes", "api", "loop", "is_async")

    def __init__(self, instance: Any, attributes: dict[str, Any], loop: Any) -> None:
        self.collection_id = instance.id
        self.tenant, self.database = instance.tenant, instance.database
        self.attributes = attributes
        self.api = weakref.ref(instance._client)
        self.is_async = loop is not None
        self.loop = weakref.ref(loop) if loop is not None else None


_GONE = object()


class DocumentCounts:
    """The collections seen (weakly held, bounded) and their last counted sizes.

    ``observe`` is the gauge's callback: it asks the helper thread for a fresh
    count of every tracked collection, waits at most ``COUNT_WAIT_SECONDS``,
    and reports whatever is known. It never raises.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._entries: dict[str, _Tracked] = {}
        self._values: dict[str, int] = {}
        self._asked = 0
        self._finished = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def track(self, instance: Any, attributes: dict[str, Any], loop: Any = None) -> None:
        key = str(instance.id)
        entry = self._entries.get(key)
        if entry is not None:
            if loop is not None and (entry.loop is None or entry.loop() is not loop):
                entry.loop = weakref.ref(loop)  # the async client's latest event loop
            return
        tracked = _Tracked(instance, attributes, loop)
        with self._lock:
            if key not in self._entries and len(self._entries) < self.limit and not self._closed:
                self._entries[key] = tracked

    def remember(self, instance: Any, count: int) -> None:
        """A count the app itself asked for (``collection.count()``)."""
        key = str(instance.id)
        with self._lock:
            if key in self._entries:
                self._values[key] = count

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._entries.clear()
            self._values.clear()
            self._done.notify_all()
        self._wake.set()

    @guarded("reporting chromadb collection sizes", default=(), outcome="the gauge goes without them")
    def observe(self, options: CallbackOptions | None = None) -> list[Observation]:
        """The document counts known now (a metrics callback: never raises)."""
        with self._lock:
            if self._closed or not self._entries:
                return []
            self._asked += 1
            wanted = self._asked
            self._start_thread()
        self._wake.set()
        deadline = time.monotonic() + COUNT_WAIT_SECONDS
        with self._lock:
            while self._finished < wanted and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._done.wait(left)
            return [
                Observation(self._values[key], entry.attributes)
                for key, entry in self._entries.items()
                if key in self._values
            ]

    def _start_thread(self) -> None:  # under the lock
        if self._thread is None or not self._thread.is_alive():  # also after a fork
            self._thread = threading.Thread(target=self._run, name="agentwatch-chromadb-counts", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with suppress_instrumentation():  # the counts themselves are not traced
            while True:
                self._wake.wait()
                self._wake.clear()
                with self._lock:
                    if self._closed:
                        return
                    target = self._asked
                    entries = list(self._entries.items())
                for key, entry in entries:
                    value = self._count(entry)
                    with self._lock:
                        if value is _GONE:
                            self._entries.pop(key, None)
                            self._values.pop(key, None)
                        elif value is None:
                            self._values.pop(key, None)
                        else:
                            self._values[key] = value
                with self._lock:
                    self._finished = max(self._finished, target)
                    self._done.notify_all()

    @staticmethod
    def _count(entry: _Tracked) -> Any:
        """The collection's record count; None if it cannot be counted now; _GONE if it never will."""
        api = entry.api()
        if api is None:
            return _GONE
        try:
            request = dict(collection_id=entry.collection_id, tenant=entry.tenant, database=entry.database)
            if not entry.is_async:
                value = api._count(**request)
            else:
                loop = entry.loop() if entry.loop is not None else None
                if loop is None or loop.is_closed():
                    return _GONE
                if not loop.is_running():
                    return None
                future = asyncio.run_coroutine_threadsafe(api._count(**request), loop)
                try:
                    value = future.result(COUNT_TIMEOUT_SECONDS)
                except concurrent.futures.TimeoutError:
                    future.cancel()
                    return None
        except Exception as error:  # noqa: BLE001
            if any(cls.__name__ == "NotFoundError" for cls in type(error).__mro__):
                return _GONE  # the collection was deleted
            warn_once("chromadb:count", f"a chromadb collection could not be counted ({error!r}); the gauge skips it meanwhile")
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


# ===================================================================== calls


class _Call:
    __slots__ = ("operation", "span", "context", "where", "metric_attributes", "started")


class _Telemetry:
    """Tracer, instruments and the collection bound of one ``instrument()``."""

    def __init__(self, tracer_provider: Any, meter_provider: Any, gauge_callback: Any) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self.limit = collection_limit()
        self.counts = DocumentCounts(self.limit)
        self._known: set[tuple] = set()
        self._lock = threading.Lock()
        built = sc.create_instruments(meter, sc.VECTORDB_METRICS, gauge_callbacks=[gauge_callback])
        self.duration = built["db.client.operation.duration"]
        self.rows = built["db.client.response.returned_rows"]

    def _admit(self, where: _Where) -> bool:
        """Whether this collection keeps its name on metrics (the first ``limit`` distinct ones do)."""
        if where.key in self._known:
            return True
        with self._lock:
            if len(self._known) < self.limit:
                self._known.add(where.key)
                return True
        warn_once(
            "chromadb:collections-bound",
            f"more than {self.limit} distinct chromadb collections seen; later ones count as {OTHER!r} on metrics "
            f"and are not in the document-count gauge (raise {ev.AGENTWATCH_CHROMADB_MAX_COLLECTIONS} to keep more)",
        )
        return False

    @guarded("chromadb telemetry (span start)", outcome="the call runs untraced")
    def begin(self, operation: str, instance: Any, args: tuple, kwargs: dict, loop: Any = None) -> _Call | None:
        where = _Where(instance)
        attributes = dict(where.span_attributes)
        attributes[sc.DB_OPERATION_NAME] = operation
        attributes.update(_request_attributes(operation, args, kwargs, capture_content()))
        call = _Call()
        call.operation, call.where = operation, where
        if self._admit(where):
            call.metric_attributes = {**where.span_attributes, sc.DB_OPERATION_NAME: operation}
            self.counts.track(instance, where.span_attributes, loop)
        else:
            call.metric_attributes = {sc.DB_SYSTEM_NAME: SYSTEM, sc.DB_COLLECTION_NAME: OTHER, sc.DB_OPERATION_NAME: operation}
        call.span = self.tracer.start_span(
            f"{operation} {where.name}" if where.name else operation, kind=SpanKind.CLIENT, attributes=attributes
        )
        call.context = trace.set_span_in_context(call.span)
        call.started = time.perf_counter()
        return call

    @guarded("chromadb telemetry (span end)")
    def end(self, call: _Call, instance: Any, result: Any = MISSING, error: BaseException | None = None) -> None:
        duration = time.perf_counter() - call.started
        span = call.span
        try:
            attributes = call.metric_attributes
            if error is not None:
                if isinstance(error, Exception):
                    error_type = type(error).__qualname__
                    span.set_attribute(sc.ERROR_TYPE, error_type)
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                    attributes = {**attributes, sc.ERROR_TYPE: error_type}
            else:
                rows = _returned_rows(call.operation, result)
                if rows is not None:
                    span.set_attribute(sc.DB_RESPONSE_RETURNED_ROWS, rows)
                    self.rows.record(rows, attributes)
                elif call.operation == "delete":
                    deleted = _deleted(result)
                    if deleted is not None:
                        span.set_attribute(sc.VECTORDB_RECORDS, deleted)
                elif call.operation == "count" and isinstance(result, int) and not isinstance(result, bool):
                    self.counts.remember(instance, result)
            self.duration.record(duration, attributes)
        finally:
            span.end()


def _sync_wrapper(instrumentor: AgentwatchChromaInstrumentor, operation: str):
    def wrapper(wrapped, instance, args, kwargs):
        tel = instrumentor._telemetry
        if tel is None or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        call = tel.begin(operation, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = attach(call)  # pyright: ignore[reportArgumentType] - _Call has the fields attach reads
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            detach(token)
            tel.end(call, instance, error=error)
            raise
        detach(token)
        tel.end(call, instance, result)
        return result

    return wrapper


def _async_wrapper(instrumentor: AgentwatchChromaInstrumentor, operation: str):
    async def traced(tel: _Telemetry, wrapped, instance, args, kwargs):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        call = tel.begin(operation, instance, args, kwargs, loop)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = attach(call)  # pyright: ignore[reportArgumentType] - _Call has the fields attach reads
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            detach(token)
            tel.end(call, instance, error=error)
            raise
        detach(token)
        tel.end(call, instance, result)
        return result

    def wrapper(wrapped, instance, args, kwargs):
        tel = instrumentor._telemetry
        if tel is None or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        return traced(tel, wrapped, instance, args, kwargs)

    return wrapper


# ============================================================== instrumentor


class AgentwatchChromaInstrumentor(BaseInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_chromadb``."""

    # One post-import hook per chromadb module for the whole process (wrapt cannot
    # unregister hooks); it wraps only while an instrument() is active.
    _hooked: set[str] = set()
    _apply_lock = threading.RLock()
    # BaseInstrumentor is a singleton whose __init__ runs on every call: state lives here.
    _telemetry: _Telemetry | None = None
    _applied: list[tuple[type, str]] = []

    def instrumentation_dependencies(self) -> StrCollection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if importlib.util.find_spec("chromadb") is None:
            # Under opentelemetry-instrument the loader skips the dependency check; say "not installed".
            raise ModuleNotFoundError("chromadb is not installed", name="chromadb")
        self._applied = []
        self._telemetry = _Telemetry(kwargs.get("tracer_provider"), kwargs.get("meter_provider"), self._observe)
        for module_name, class_name in _CLASSES:
            if module_name in sys.modules:
                self._apply(sys.modules[module_name], class_name)
            elif module_name not in AgentwatchChromaInstrumentor._hooked:
                AgentwatchChromaInstrumentor._hooked.add(module_name)
                wrapt.register_post_import_hook(lambda module, cls=class_name: self._on_import(module, cls), module_name)

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._apply_lock:
            for cls, method in self._applied:
                unwrap(cls, method)
            self._applied = []
        if self._telemetry is not None:
            self._telemetry.counts.close()
        self._telemetry = None

    def _observe(self, options: CallbackOptions) -> list[Observation]:
        tel = self._telemetry
        return tel.counts.observe(options) if tel is not None else []

    def _on_import(self, module: Any, class_name: str) -> None:
        if self._telemetry is not None:
            self._apply(module, class_name)

    def _apply(self, module: Any, class_name: str) -> None:
        try:
            cls = getattr(module, class_name)
        except Exception:  # noqa: BLE001
            warn_once(f"chromadb:missing:{class_name}", f"chromadb has no {class_name}; its calls are not traced")
            return
        with self._apply_lock:
            for operation in OPERATIONS:
                # Never break the import of chromadb: a method we cannot wrap is not traced.
                run(f"instrumenting chromadb {class_name}.{operation}", self._wrap, cls, class_name, operation,
                    outcome="it is not traced")

    def _wrap(self, cls: type, class_name: str, operation: str) -> None:
        current = cls.__dict__.get(operation)
        if current is None:
            warn_once(
                f"chromadb:missing:{class_name}.{operation}",
                f"chromadb's {class_name} has no {operation}(); it is not traced",
            )
            return
        if getattr(current, _TAG, False):
            return  # already wrapped
        make = _async_wrapper if inspect.iscoroutinefunction(current) else _sync_wrapper
        wrapt.wrap_function_wrapper(cls, operation, make(self, operation))
        setattr(cls.__dict__[operation], _TAG, True)
        self._applied.append((cls, operation))
