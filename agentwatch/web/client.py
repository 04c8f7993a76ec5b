"""agentwatch's HTTP client layer: the ``httpx``/``httpx2`` client span and ``http.client.request.duration``,
for a fraction of the Python work.

The contrib instrumentation (opentelemetry-instrumentation-httpx 0.66b1) costs a model call about 860
Python calls more than the uninstrumented client (the request's URL parsed again, its headers copied and
normalised into a new ``Headers`` object for the trace context, both header sets walked once per header
name for header capture even when none is configured, and a dozen semantic-convention helpers that
check the stability mode on each call). Here the same span and point are made from what the request
already holds: its parsed URL, and the trace headers set on its own ``Headers``.

What it exports is what the contrib instrumentation exports in the stable HTTP mode
(``OTEL_SEMCONV_STABILITY_OPT_IN=http``, agentwatch's default; tests/test_client_layer.py compares both
on real requests): the span name (the sanitised method, ``HTTP`` for an unknown one), kind CLIENT,
attributes in the same order, status, exception event, and the same histogram (name, unit, description,
bucket advice, attribute set; like the contrib one, no point for a request that raised). Differences, on
purpose: the instrumentation scope is ``agentwatch.web`` (agentwatch's version), and
``OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS`` is read when instrumented, not per request.

It is used by :class:`AgentwatchHTTPXClientInstrumentor` / :class:`AgentwatchHTTPX2ClientInstrumentor`,
which the distro loads in place of the contrib ``httpx``/``httpx2`` entry points, only where it reproduces
that output: the stable HTTP mode, no request or response headers to capture, no hooks passed to
``instrument()``, and ``AGENTWATCH_CLIENT_LAYER=agentwatch`` (the default). Otherwise they instrument
exactly as the contrib instrumentors do. A transport that the contrib instrumentation wraps anyway (an app
that calls ``HTTPXClientInstrumentor().instrument()`` or ``instrument_client()`` itself) keeps the
contrib span only: never two client spans.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from opentelemetry import propagate
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.instrumentation.utils import http_status_to_status_code, is_http_instrumentation_enabled
from opentelemetry.instrumentation.utils import unwrap as _unwrap
from opentelemetry.trace import SpanKind, Status, StatusCode
from wrapt import wrap_function_wrapper

from agentwatch.web.server import HTTPLayer, sanitize_method

_URL_CACHE_SIZE = 256
_URL_CACHE_MAX_CHARS = 1024  # longer URLs are redacted each time: the cache stays under ~0.5 MB


class _Layer(HTTPLayer):
    """The tracer, histogram and configuration one instrumentor's wrappers share."""

    def __init__(self, module: Any, contrib: type, tracer_provider: Any, meter_provider: Any) -> None:
        # Excluded URLs of OTEL_PYTHON_HTTPX_EXCLUDED_URLS, else OTEL_PYTHON_EXCLUDED_URLS.
        super().__init__("client", "HTTPX", tracer_provider, meter_provider)
        self.module = module
        self.contrib = contrib  # its own instance, when an app instruments with it, makes the span instead
        self.urls: dict[str, str] = {}

    def stands_aside(self, instance: Any) -> bool:
        """The contrib instrumentation traces this transport itself (its class-wide or per-client wrapper)."""
        contrib = self.contrib._instance  # read, not created: the class's singleton, if the app made one
        if contrib is not None and contrib.is_instrumented_by_opentelemetry:
            return True
        own = getattr(instance, "__dict__", None)
        return bool(own) and ("handle_request" in own or "handle_async_request" in own)

    def redacted(self, url: str) -> str:
        """``redact_url`` (credentials and signed query parameters), remembered per URL: a client calls few."""
        found = self.urls.get(url)
        if found is None:
            from opentelemetry.util.http import redact_url

            found = redact_url(url)
            if len(url) <= _URL_CACHE_MAX_CHARS:
                if len(self.urls) >= _URL_CACHE_SIZE:
                    self.urls.clear()
                self.urls[url] = found
        return found

    def start(self, request: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(span name, span attributes, metric attributes) of a request, as the contrib helpers set them."""
        original = request.method.strip()  # httpx keeps it as a str
        method = sanitize_method(original, self.all_methods)
        attributes: dict[str, Any] = {}
        if original != method and original:
            attributes["http.request.method_original"] = original
        attributes["http.request.method"] = method
        url = request.url
        attributes["url.full"] = self.redacted(str(url))
        metric: dict[str, Any] = {"http.request.method": method}
        host = url.host
        if host:
            attributes["server.address"] = host
            attributes["network.peer.address"] = host
            metric["server.address"] = host
        port = url.port
        if port:
            attributes["server.port"] = port
            attributes["network.peer.port"] = port
            metric["server.port"] = port
        return ("HTTP" if method == "_OTHER" else method), attributes, metric

    def finish(self, span: Any, response: Any, metric: dict[str, Any]) -> None:
        """The response's status and protocol on the span and in the metric attributes."""
        status_code = response.status_code
        version = response.http_version
        recording = span.is_recording()
        if status_code < 0:  # what the contrib helpers leave for a transport that answers nonsense
            metric["error.type"] = str(status_code)
            if recording:
                span.set_attribute("error.type", str(status_code))
                span.set_attribute("http.response.status_code", status_code)
                span.set_status(Status(StatusCode.ERROR))
        else:
            status = http_status_to_status_code(status_code, server_span=False)
            metric["http.response.status_code"] = status_code
            failed = status is StatusCode.ERROR
            if failed:
                metric["error.type"] = str(status_code)
            if recording:
                span.set_attribute("http.response.status_code", status_code)
                if failed:
                    span.set_attribute("error.type", str(status_code))
                span.set_status(Status(status))
        if version:
            version = version.replace("HTTP/", "")
            if version:
                metric["network.protocol.version"] = version
                if recording:
                    span.set_attribute("network.protocol.version", version)


def _inject(request: Any) -> None:
    """The trace context (and agentwatch's bounded baggage) onto the request's own headers."""
    try:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            headers = request.headers
            for key, value in carrier.items():
                headers[key] = value
    except Exception as error:  # noqa: BLE001 - the request goes out without trace headers
        _fault("injecting the trace context", error)


def _fault(step: str, error: BaseException) -> None:
    from agentwatch.distro.guard import failed

    # The error type only: its text may hold the request's URL or headers.
    failed(f"HTTP client span: {step}", error, "the request is unchanged; its span may lack attributes",
           detail=type(error).__name__)


def _begin(layer: _Layer, instance: Any, request: Any) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """What :meth:`_Layer.start` gives for a request to trace, or None: send it untraced (not an httpx request,
    instrumentation suppressed, the contrib wrappers trace this transport, an excluded URL, or a fault)."""
    if (not isinstance(request, layer.module.Request) or not is_http_instrumentation_enabled()
            or layer.stands_aside(instance)
            or (layer.excluded is not None and layer.excluded.url_disabled(str(request.url)))):
        return None
    try:
        return layer.start(request)
    except Exception as error:  # noqa: BLE001 - the request goes out untraced, never fails for it
        _fault("reading the request", error)
        return None


def _conclude(layer: _Layer, span: Any, response: Any, exception: Exception | None, elapsed: float,
              metric: dict[str, Any]) -> None:
    """After the transport answered or raised: the response on the span, then the exception raised again inside
    the span (as the contrib wrapper does: recorded as an event, no duration point), else the duration."""
    if isinstance(response, layer.module.Response):
        try:
            layer.finish(span, response, metric)
        except Exception as error:  # noqa: BLE001
            _fault("reading the response", error)
    if exception is not None:
        if span.is_recording():
            span.set_attribute("error.type", type(exception).__qualname__)
        raise exception.with_traceback(exception.__traceback__)
    layer.duration.record(max(elapsed, 0), attributes=metric)


def _sync_wrapper(layer: _Layer) -> Callable[..., Any]:
    def handle_request(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        begun = _begin(layer, instance, request)
        if begun is None:
            return wrapped(*args, **kwargs)
        name, attributes, metric = begun
        with layer.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
            _inject(request)
            exception = response = None
            start = perf_counter()
            try:
                response = wrapped(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - raised again by _conclude, inside the span
                exception = error
                response = getattr(error, "response", None)
            _conclude(layer, span, response, exception, perf_counter() - start, metric)
        return response

    return handle_request


def _async_wrapper(layer: _Layer) -> Callable[..., Any]:
    async def handle_async_request(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        begun = _begin(layer, instance, request)
        if begun is None:
            return await wrapped(*args, **kwargs)
        name, attributes, metric = begun
        with layer.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
            _inject(request)
            exception = response = None
            start = perf_counter()
            try:
                response = await wrapped(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - raised again by _conclude, inside the span
                exception = error
                response = getattr(error, "response", None)
            _conclude(layer, span, response, exception, perf_counter() - start, metric)
        return response

    return handle_async_request


def reproduces_contrib(kwargs: dict[str, Any]) -> bool:
    """Whether this layer's output is the contrib instrumentation's for these ``instrument()`` arguments and
    this environment (otherwise the contrib wrappers are installed)."""
    from opentelemetry.util.http import (
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST,
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE,
        get_custom_headers,
    )

    from agentwatch.distro.settings import settings
    from agentwatch.web.choice import stable_http_mode

    if settings().client_layer != "agentwatch":
        return False
    if any(kwargs.get(hook) is not None for hook in ("request_hook", "response_hook", "async_request_hook",
                                                     "async_response_hook")):
        return False
    if get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST) or get_custom_headers(
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE):
        return False
    return stable_http_mode()


class _LayerInstrumentation:
    """Mixed into the contrib instrumentor classes: agentwatch's wrappers where they reproduce its output."""

    _instance = None  # a singleton of its own, not the contrib class's
    _contrib: type  # the contrib instrumentor it extends, whose own instance makes the span instead
    _module: Any
    _module_name: str

    def _instrument(self, **kwargs: Any) -> None:
        if not reproduces_contrib(kwargs):
            super()._instrument(**kwargs)  # type: ignore[misc]
            return
        module = self._module
        if module is None:
            raise ModuleNotFoundError(f"{self._module_name} must be installed")
        layer = _Layer(module, self._contrib, kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        wrap_function_wrapper(self._module_name, "HTTPTransport.handle_request", _sync_wrapper(layer))
        wrap_function_wrapper(self._module_name, "AsyncHTTPTransport.handle_async_request", _async_wrapper(layer))

    def _uninstrument(self, **kwargs: Any) -> None:
        module = self._module
        if module is None:
            raise ModuleNotFoundError(f"{self._module_name} must be installed")
        _unwrap(module.HTTPTransport, "handle_request")
        _unwrap(module.AsyncHTTPTransport, "handle_async_request")


class AgentwatchHTTPXClientInstrumentor(_LayerInstrumentation, HTTPXClientInstrumentor):
    """The contrib ``httpx`` instrumentor, with agentwatch's client layer where it gives the same output."""

    _contrib = HTTPXClientInstrumentor


class AgentwatchHTTPX2ClientInstrumentor(_LayerInstrumentation, HTTPX2ClientInstrumentor):
    """The contrib ``httpx2`` instrumentor, with agentwatch's client layer where it gives the same output."""

    _contrib = HTTPX2ClientInstrumentor
