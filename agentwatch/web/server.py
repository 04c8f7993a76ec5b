"""agentwatch's one server layer: the HTTP server span and metrics, the request ids, in one ASGI layer.

Without it each request of a FastAPI app passed three layers: the contrib ASGI middleware
(opentelemetry-instrumentation-fastapi/asgi: server span, ``http.server.*`` metrics, with its own
``ServerErrorMiddleware`` and exception-recording middleware around the app's), agentwatch's
:class:`~agentwatch.web.middleware.AgentwatchMiddleware` (request ids, health, lifespan) and FastAPI's
native telemetry (which steps aside per request when it finds the contrib middleware). Here
:class:`ServerLayer` does the first two, and FastAPI's native layer is switched off once per app.

What it exports is what the contrib layer exports with agentwatch's configuration (the stable HTTP
conventions, ``OTEL_SEMCONV_STABILITY_OPT_IN=http``; tests/test_server_layer.py compares both): the
same span name (``{method} {route}``, matched the way the contrib FastAPI instrumentation does),
kind (SERVER after propagation extract, INTERNAL under an already current span), attributes, status,
exception events, and the same instruments (names, units, descriptions, bucket advice, attribute sets).
Differences, on purpose: the instrumentation scope is ``agentwatch.web`` (agentwatch's version), and
``http.server.response.body.size`` is recorded only for a response that had a ``Content-Length``
(the contrib layer keeps the last value it saw on the middleware and records it for later responses
without one).

It is used only where it reproduces that output: the stable HTTP mode, no per-message
``http send``/``http receive`` spans (``AGENTWATCH_ASGI_MESSAGE_SPANS``), and
``AGENTWATCH_SERVER_LAYER=agentwatch`` (the default; ``contrib`` switches back). An app that the contrib
instrumentation wraps anyway (``FastAPIInstrumentor.instrument_app(app)`` called by the app) keeps the
contrib span and gets the request-id layer only: never two server spans.
"""

from __future__ import annotations

import inspect
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.instrumentation._semconv import HTTP_DURATION_HISTOGRAM_BUCKETS_NEW
from opentelemetry.instrumentation.propagators import get_global_response_propagator
from opentelemetry.instrumentation.utils import http_status_to_status_code, is_http_instrumentation_enabled
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch.distro.guard import run
from agentwatch.web import request_id as rid
from agentwatch.web.middleware import AgentwatchMiddleware

SCOPE_NAME = "agentwatch.web"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.21.0"  # the contrib layer's, in the stable HTTP mode
RECORDED_KEY = "agentwatch.server_span.exception"  # scope key: the exception already recorded on the span

_KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"))
_DURATION_KEYS = (
    "error.type", "http.request.method", "http.response.status_code", "http.route", "network.protocol.version",
    "url.scheme",
)


def sanitize_method(raw: str, all_methods: bool) -> str:
    """The contrib ``sanitize_method``: upper case, ``_OTHER`` for an unknown method unless every method is
    captured (``OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS``, read once by the caller)."""
    upper = raw.upper()
    return upper if all_methods or upper in _KNOWN_METHODS else "_OTHER"


def _decode(value: bytes) -> str:
    """A header item as the contrib ASGI getter decodes it (UTF-8, else escaped)."""
    try:
        return value.decode("utf-8")
    except ValueError:
        return value.decode("unicode_escape")


class _ScopeGetter(Getter[dict]):
    """The contrib ASGI getter's answers, comparing header names as bytes instead of decoding every header."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        headers = carrier.get("headers")
        if not headers:
            return None
        wanted_name = key.lower().encode("latin-1")
        found = [_decode(value) for name, value in headers if name.lower() == wanted_name]
        return found or None

    def keys(self, carrier: dict) -> list[str]:
        return [_decode(name) for name, _ in carrier.get("headers") or []]


_GETTER = _ScopeGetter()


class _IndexGetter(Getter[dict]):
    """The same answers from the request's headers indexed once (lower-cased name -> raw values, in order):
    the propagators look up three names, the metrics one more, without a pass over the headers each."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        values = carrier.get(key.lower().encode("latin-1"))
        return [_decode(value) for value in values] if values else None

    def keys(self, carrier: dict) -> list[str]:
        return [_decode(name) for name, values in carrier.items() for _ in values]


_INDEX_GETTER = _IndexGetter()


def _index(headers: Any) -> dict[bytes, list[bytes]]:
    index: dict[bytes, list[bytes]] = {}
    for name, value in headers or ():
        lowered = name.lower()
        found = index.get(lowered)
        if found is None:
            index[lowered] = [value]
        else:
            found.append(value)
    return index


_ROUTE_CACHE_SIZE = 1024


class _Routes:
    """The route template the contrib instrumentation names a request's span after, found its way (first full
    match, else the last partial one) but on the app's routes flattened once per version of its route table
    (the contrib instrumentation flattens them on every request), and remembered for up to
    ``_ROUTE_CACHE_SIZE`` distinct paths (templates without parameters, such as ``/chat``, are matched once)."""

    def __init__(self, app: Any):
        self.app = app
        self.version: Any = object()
        self.contexts: list[Any] = []
        self.cache: dict[tuple[Any, ...], str | None] = {}
        self.cacheable = False

    def _current(self) -> list[Any]:
        router = getattr(self.app, "router", None)
        versioned = getattr(router, "_get_routes_version", None)
        # FastAPI counts changes made through its API; the length catches a route appended to the list itself.
        version = (versioned(), len(getattr(router, "routes", ()))) if callable(versioned) else None
        if version is None or version != self.version:
            try:
                from fastapi.routing import iter_route_contexts

                contexts = list(iter_route_contexts(self.app.routes))
            except ImportError:  # older FastAPI: routes are matchable as they are
                contexts = list(self.app.routes)
            self.cache = {}
            if version is None:
                self.cacheable = False
                return contexts
            from starlette.routing import Host

            # A Host route matches on the Host header, which the cache key leaves out.
            self.cacheable = not any(
                isinstance(item, Host) for c in contexts for item in (c, getattr(c, "route", None),
                                                                      getattr(c, "original_route", None))
            )
            self.version, self.contexts = version, contexts
        return self.contexts

    def match(self, scope: dict) -> str | None:
        contexts = self._current()
        if not self.cacheable:
            return self._match(contexts, scope)
        key = (scope["type"], scope.get("method"), scope.get("path"), scope.get("root_path"))
        try:
            return self.cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value in a hand-made scope
            return self._match(contexts, scope)
        route = self._match(contexts, scope)
        if len(self.cache) < _ROUTE_CACHE_SIZE:
            self.cache[key] = route
        return route

    @staticmethod
    def _match(contexts: list[Any], scope: dict) -> str | None:
        from starlette.routing import Match, Route

        route = None
        for candidate in contexts:
            match, _ = Route.matches(candidate, scope) if isinstance(candidate, Route) else candidate.matches(scope)
            if match == Match.FULL:
                try:
                    route = candidate.path
                except AttributeError:  # host routing
                    route = scope.get("path")
                break
            if match == Match.PARTIAL:
                route = candidate.path
        return route


class HTTPLayer:
    """What agentwatch's server and client layers share, made once per process: the tracer and meter of
    scope ``agentwatch.web``, ``http.{side}.request.duration`` as the contrib instrumentations create it in
    the stable HTTP mode, their excluded URLs (``OTEL_PYTHON_{instrumentation}_EXCLUDED_URLS``, else
    ``OTEL_PYTHON_EXCLUDED_URLS``; None: none) and ``OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS``."""

    def __init__(self, side: str, instrumentation: str, tracer_provider: Any, meter_provider: Any) -> None:
        import os

        from opentelemetry.util.http import OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS, get_excluded_urls

        from agentwatch.version import __version__

        self.tracer = trace.get_tracer(SCOPE_NAME, __version__, tracer_provider, schema_url=SCHEMA_URL)
        self.meter = metrics.get_meter(SCOPE_NAME, __version__, meter_provider, schema_url=SCHEMA_URL)
        self.duration = self.meter.create_histogram(
            name=f"http.{side}.request.duration",
            description=f"Duration of HTTP {side} requests.",
            unit="s",
            explicit_bucket_boundaries_advisory=HTTP_DURATION_HISTOGRAM_BUCKETS_NEW,
        )
        excluded = get_excluded_urls(instrumentation)
        self.excluded = excluded if getattr(excluded, "_excluded_urls", None) else None
        self.all_methods = bool(os.environ.get(OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS))


class ServerTelemetry(HTTPLayer):
    """The tracer, the instruments and the environment-derived options, made once per process."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None):
        from opentelemetry.semconv._incubating.metrics.http_metrics import (
            create_http_server_active_requests,
            create_http_server_request_body_size,
            create_http_server_response_body_size,
        )
        from opentelemetry.util.http import (
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS,
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST,
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE,
            SanitizeValue,
            get_custom_headers,
        )

        # Exactly the contrib ASGI middleware's instruments in the stable HTTP mode; excluded URLs of
        # OTEL_PYTHON_FASTAPI_EXCLUDED_URLS, else OTEL_PYTHON_EXCLUDED_URLS.
        super().__init__("server", "FASTAPI", tracer_provider, meter_provider)
        meter = self.meter
        self.response_size = create_http_server_response_body_size(meter)
        self.request_size = create_http_server_request_body_size(meter)
        self.active = create_http_server_active_requests(meter)
        self.capture_request = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST) or None
        self.capture_response = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE) or None
        self.sanitize = SanitizeValue(get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS) or [])

    def _method(self, raw: str) -> str:
        return sanitize_method(raw, self.all_methods)

    def start(self, routes: _Routes, scope: dict) -> _Exchange | None:
        """Open the span of one request or websocket (None: not traced, as the contrib layer decides)."""
        if not is_http_instrumentation_enabled():
            return None
        headers = _index(scope.get("headers"))
        host = headers.get(b"host", (None,))[0]
        user_agent = headers.get(b"user-agent", (None,))[0]
        server = scope.get("server") or ["0.0.0.0", 80]
        port = server[1]
        server_host = server[0] + (":" + str(port) if str(port) != "80" else "")
        path = scope.get("path")
        if self.excluded is not None:
            url_host = _decode(host) if host is not None else server_host
            if self.excluded.url_disabled(scope.get("scheme", "http") + "://" + url_host + (path or "")):
                return None
        attributes = _request_attributes(self, scope, server_host, port, path, user_agent)
        raw_method = scope.get("method", "").strip()
        method = self._method(raw_method)
        if method == "_OTHER":
            method = "HTTP"
        route = routes.match(scope)
        if route:
            attributes["http.route"] = route
        name = f"{method} {route}" if method and route else route if route else method

        token = None
        if trace.get_current_span() is trace.INVALID_SPAN:
            parent = propagate.extract(headers, getter=_INDEX_GETTER)
            token = otel_context.attach(parent)
            kind = SpanKind.SERVER
        else:
            parent = otel_context.get_current()
            kind = SpanKind.INTERNAL
        span = self.tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
        try:
            return _Exchange(self, scope, span, kind, attributes, token, headers)
        except BaseException:
            # Nothing of this request's telemetry may outlive the failure: the context, the span.
            if token is not None:
                otel_context.detach(token)
            span.end()
            raise


def _request_attributes(
    telemetry: ServerTelemetry, scope: dict, server_host: str, port: Any, path: str | None, user_agent: bytes | None
) -> dict[str, Any]:
    """``collect_request_attributes`` of the contrib ASGI middleware, stable HTTP mode."""
    result: dict[str, Any] = {}
    scheme = scope.get("scheme")
    if scheme:
        result["url.scheme"] = scheme
    if server_host:
        result["server.address"] = server_host
    if port:
        try:
            result["server.port"] = int(port)
        except (ValueError, TypeError):
            pass
    version = scope.get("http_version")
    if version:
        result["network.protocol.version"] = version
    if path:
        result["url.path"] = path
        query = scope.get("query_string")
        if query:
            result["url.query"] = query.decode("utf8", "replace") if isinstance(query, bytes) else query
    raw_method = scope.get("method", "")
    if raw_method:
        original = raw_method.strip()
        normalized = telemetry._method(raw_method).strip()
        if original != normalized and original:
            result["http.request.method_original"] = original
        if normalized:
            result["http.request.method"] = normalized
    if user_agent is not None:
        from opentelemetry.util.http import detect_synthetic_user_agent

        value = _decode(user_agent)
        if value:
            result["user_agent.original"] = value
        synthetic = detect_synthetic_user_agent(value)
        if synthetic:
            result["user_agent.synthetic.type"] = synthetic
    client = scope.get("client")
    if client is not None:
        if client[0]:
            result["client.address"] = client[0]
        if client[1]:
            try:
                result["client.port"] = int(client[1])
            except (ValueError, TypeError):
                pass
    return result


class _Exchange:
    """One request's span and metric state, from the span's start to its end."""

    __slots__ = ("attributes", "content_length", "context", "headers", "kind", "scope", "span", "span_token",
                 "started", "telemetry", "token")

    def __init__(self, telemetry: ServerTelemetry, scope: dict, span: Any, kind: SpanKind, attributes: dict,
                 token: Any, headers: dict[bytes, list[bytes]]):
        self.telemetry, self.scope, self.span, self.kind, self.attributes = telemetry, scope, span, kind, attributes
        self.token, self.headers = token, headers
        self.started = perf_counter()
        self.content_length: int | None = None
        self.context = trace.set_span_in_context(span)
        if telemetry.capture_request and kind is SpanKind.SERVER and span.is_recording():
            self._capture(scope, telemetry.capture_request, "request")
        if scope["type"] == "http":
            telemetry.active.add(1, self._active_attributes())
        self.span_token = otel_context.attach(self.context)  # last: a failure above leaves no context behind

    def _active_attributes(self) -> dict[str, Any]:
        attributes = self.attributes
        return {key: attributes[key] for key in ("http.request.method", "url.scheme") if key in attributes}

    def _capture(self, carrier: dict, regexes: list[str], which: str) -> None:
        from opentelemetry.instrumentation.asgi import collect_custom_headers_attributes
        from opentelemetry.util.http import normalise_request_header_name, normalise_response_header_name

        normalise = normalise_request_header_name if which == "request" else normalise_response_header_name
        captured = collect_custom_headers_attributes(carrier, self.telemetry.sanitize, regexes, normalise)
        if captured:
            self.span.set_attributes(captured)

    def wrap(self, send: Any) -> Any:
        """``send`` with :meth:`before_send` / :meth:`after_send` around each message."""

        async def traced_send(message: dict) -> None:
            self.before_send(message)
            await send(message)
            self.after_send(message)

        return traced_send

    def before_send(self, message: dict) -> None:
        run("web layer: server span", self._before_send, message, outcome="the span may miss this response's status")

    def after_send(self, message: dict) -> None:
        """The span ends with the last body chunk (as the contrib layer's does), before background tasks."""
        if message["type"] == "http.response.body" and not message.get("more_body", False) and self.span.is_recording():
            run("web layer: server span", self.span.end, outcome="continuing")

    def _before_send(self, message: dict) -> None:
        """What the contrib ``otel_send`` does before passing a message on (send spans excluded)."""
        kind = message["type"]
        status_code = None
        if kind == "http.response.start":
            status_code = message["status"]
        elif kind == "websocket.send":
            status_code = 200
        span = self.span
        if (self.telemetry.capture_response and "headers" in message and self.kind is SpanKind.SERVER
                and span.is_recording()):
            self._capture(message, self.telemetry.capture_response, "response")
        if status_code:
            self._status(status_code)
        propagator = get_global_response_propagator()
        if propagator:
            from opentelemetry.instrumentation.asgi import asgi_setter

            propagator.inject(message, context=trace.set_span_in_context(span, otel_context.Context()),
                              setter=asgi_setter)
        if kind == "http.response.start":
            length = _GETTER.get(message, "content-length")
            if length:
                try:
                    self.content_length = int(length[0])
                except ValueError:
                    pass

    def _status(self, status_code: Any) -> None:
        span, attributes = self.span, self.attributes
        text = str(status_code)
        try:
            code = int(status_code)
        except ValueError:
            code = -1
        recording = span.is_recording()
        if code < 0:
            attributes["error.type"] = text
            if recording:
                span.set_attribute("error.type", text)
                span.set_status(Status(StatusCode.ERROR, "Non-integer HTTP status: " + text))
            return
        status = http_status_to_status_code(code, server_span=True)
        attributes["http.response.status_code"] = code
        if recording:
            span.set_attribute("http.response.status_code", code)
        if status is StatusCode.ERROR:
            attributes["error.type"] = text
            if recording:
                span.set_attribute("error.type", text)
                span.set_status(Status(status))

    def failed(self, exc: Exception) -> None:
        """An exception left the app: recorded as the contrib exception middleware (unless the server error
        handler was told already) and then its ``use_span`` record it, while the span is open."""
        span = self.span
        times = 1 if self.scope.get(RECORDED_KEY) is exc else 2
        for _ in range(times):
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def finish(self) -> None:
        """Detach the span, record the metrics (while it is the current span, for exemplars) and end it."""
        otel_context.detach(self.span_token)
        telemetry, attributes, context = self.telemetry, self.attributes, self.context
        if self.scope["type"] == "http":
            elapsed = perf_counter() - self.started
            duration_attributes = {key: attributes[key] for key in _DURATION_KEYS if key in attributes}
            telemetry.duration.record(max(elapsed, 0), duration_attributes, context=context)
            telemetry.active.add(-1, self._active_attributes())
            if self.content_length is not None:
                telemetry.response_size.record(self.content_length, duration_attributes, context=context)
            request_length = _INDEX_GETTER.get(self.headers, "content-length")
            if request_length:
                try:
                    amount = int(request_length[0])
                except ValueError:
                    pass
                else:
                    telemetry.request_size.record(amount, duration_attributes, context=context)
        if self.token is not None:
            otel_context.detach(self.token)
        if self.span.is_recording():
            self.span.end()


class ServerLayer(AgentwatchMiddleware):
    """The server span and metrics around :class:`AgentwatchMiddleware`'s request handling, in one layer."""

    def __init__(self, app: Any, routes: dict[str, Any], telemetry: ServerTelemetry, fastapi_app: Any):
        super().__init__(app, routes)
        self.telemetry = telemetry
        self.app_routes = _Routes(fastapi_app)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind != "http" and kind != "websocket":
            await AgentwatchMiddleware.__call__(self, scope, receive, send)
            return
        exchange = run("web layer: server span", self.telemetry.start, self.app_routes, scope,
                       outcome="such requests go without a server span and HTTP server metrics")
        if exchange is None:
            await AgentwatchMiddleware.__call__(self, scope, receive, send)
            return

        try:
            if kind == "http" and rid.SCOPE_KEY not in scope:
                await self._serve(scope, receive, send, exchange)
            else:  # a websocket, or a mounted app's request (the enclosing app's layer set the ids up)
                await self.app(scope, receive, exchange.wrap(send))
        except Exception as exc:
            run("web layer: server span", exchange.failed, exc, outcome="the exception is not on the span")
            raise
        finally:
            run("web layer: server span", exchange.finish, outcome="continuing")


_active: ServerTelemetry | None = None


def activate(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Make the layer trace the FastAPI apps built from now on (the web instrumentor calls it when
    :func:`agentwatch.web.choice.wanted`)."""
    global _active  # noqa: PLW0603
    _active = ServerTelemetry(tracer_provider, meter_provider)


def active() -> ServerTelemetry | None:
    return _active


def deactivate() -> None:
    global _active  # noqa: PLW0603
    _active = None


def build(app: Any, stack: Any) -> Any:
    """``middleware.build``, with the server layer in place of ``AgentwatchMiddleware`` when it is active and
    the contrib instrumentation does not wrap this app."""
    from agentwatch.web import middleware

    telemetry = _active
    if telemetry is None or instrumented_by_contrib(app):
        return middleware.build(app, stack)

    def layer(stack: Any, routes: dict[str, Any]) -> Any:
        stack.app = step_aside_native(app, stack)
        if stack.handler is not None:
            stack.handler = record_before_handler(stack.handler)
        stack.error_response = record_before_handler(stack.error_response)
        stack.debug_response = record_before_handler(stack.debug_response)
        return ServerLayer(stack, routes, telemetry, app)

    return middleware.build(app, stack, layer)


def record_before_handler(handler: Any) -> Any:
    """Wrap a ``ServerErrorMiddleware`` handler so the exception is on the span before the 500 is sent (and
    the span ends), as the contrib exception middleware under it did."""

    def record(request: Any, exc: Exception) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        request.scope[RECORDED_KEY] = exc

    if inspect.iscoroutinefunction(handler):
        async def async_handler(request: Any, exc: Exception) -> Any:
            run("web layer: server span", record, request, exc, outcome="the exception is not on the span")
            return await handler(request, exc)

        return async_handler

    def sync_handler(request: Any, exc: Exception) -> Any:
        run("web layer: server span", record, request, exc, outcome="the exception is not on the span")
        return handler(request, exc)

    return sync_handler


def step_aside_native(app: Any, stack: Any) -> Any:
    """Switch FastAPI's native telemetry off for ``app`` (decided once, here: its per-request check then finds
    every signal off at once) and drop its exception observer from the stack; return the stack's inner app."""
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict):
        config.update(tracing=False, metrics=False, logs=False, operation_spans=False)
    inner = stack.app
    cls = type(inner)
    if cls.__name__ == "ExceptionTelemetryMiddleware" and cls.__module__.startswith("fastapi.telemetry"):
        inner = inner.app  # it only reports to the native layer's per-request state, which no longer exists
    return inner


def instrumented_by_contrib(app: Any) -> bool:
    """The app is wrapped by the contrib FastAPI instrumentation (the app called ``instrument_app`` itself)."""
    return bool(getattr(app, "_is_instrumented_by_opentelemetry", False))
