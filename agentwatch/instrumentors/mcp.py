"""
MCP instrumentation: Model Context Protocol requests as OpenTelemetry spans and metrics on both sides,
per the GenAI/MCP semantic conventions.

Every request a ``ClientSession`` sends -- ``initialize``, ``tools/list``, ``tools/call``, ... -- is one
CLIENT span ``{mcp.method.name} {target}`` (``tools/call get_weather``); every request a server handles
(low-level ``Server`` and ``MCPServer``, the SDK's renamed FastMCP) is one SERVER span of the same name,
over stdio and Streamable HTTP alike. Attributes: ``mcp.method.name``, ``mcp.protocol.version``,
``mcp.session.id`` (server side, Streamable HTTP), ``jsonrpc.request.id``, ``gen_ai.operation.name`` =
``execute_tool`` and ``gen_ai.tool.name`` for ``tools/call``, ``gen_ai.prompt.name`` for ``prompts/get``,
``network.transport`` (server), ``rpc.response.status_code`` and ``error.type`` (the JSON-RPC error code,
the exception class, or ``tool_error`` for a tool result with ``isError``).

Trace context: the W3C ``traceparent``/``tracestate`` go in the request's ``params._meta`` on every
request, ``initialize`` and list calls included, and the server's span is parented to them, so one trace
spans client and server processes; the httpx instrumentation still sets the HTTP headers for Streamable
HTTP servers that read those. A Streamable HTTP session's own exchanges (its GET event stream, the DELETE
that ends it) run with no parent span: they belong to the session, not to the request that opened it.

One span per call: mcp 2.x emits its own spans (``MCP send ...`` on the sender, a middleware's SERVER
span on the receiver). agentwatch takes their place: the sender's span becomes ours (the SDK's code sets
its attributes on it, its own span is not started) and the SDK's middleware is replaced by ours. A
``tools/call`` sent while an ``execute_tool`` span is current (an agent framework's or agentwatch's own
tool span) adds its attributes to that span instead of starting a sibling.

Metrics: ``mcp.client.operation.duration``, ``mcp.server.operation.duration`` (per request) and
``mcp.client.session.duration``, ``mcp.server.session.duration`` (per session), histograms in seconds with
the conventions' buckets.

Privacy: tool arguments and results only with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` =
``SPAN_ONLY``/``SPAN_AND_EVENT`` (``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``), scrubbed
and cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``.

Loaded by the ``agentwatch_mcp`` entry point only where the ``mcp`` package is installed; the SDK's
modules are wrapped when the app first imports them, so an app that never imports mcp pays nothing.
Never breaks the app: a failure of ours is reported once and the call runs as if uninstrumented.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
import time
from collections.abc import Collection as StrCollection
from collections.abc import Mapping
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch import semconv as sc
from agentwatch.distro.guard import run
from agentwatch.instrumentors._agents.settings import capture_content, clip
from agentwatch.version import __version__

__all__ = ["AgentwatchMCPInstrumentor"]

#: The dispatcher / middleware seams wrapped here are mcp 2.x's (tested with 2.3.0, the dev group's pin).
_instruments = ("mcp >= 2.0",)

SCOPE = "agentwatch.instrumentors.mcp"
TOOL_ERROR = "tool_error"
INVALID_PARAMS = -32602  # JSON-RPC
_DISPATCHER = "mcp.shared.jsonrpc_dispatcher"
_MIDDLEWARE = "mcp.server._otel"
_CLIENT = "mcp.client.session"
_SERVE_MODULES = ("mcp.server.runner", "mcp.server.lowlevel.server", "mcp.server.streamable_http_manager")
_HTTP_CLIENT = "mcp.client.streamable_http"
_SESSION_EXCHANGES = ("handle_get_stream", "terminate_session")  # StreamableHTTPTransport's, see _detached
_SERVE_FUNCTIONS = ("serve_loop", "serve_dual_era_loop", "serve_connection")
_PROTOCOL_META = "io.modelcontextprotocol/protocolVersion"
_IN_SESSION: contextvars.ContextVar[bool] = contextvars.ContextVar("agentwatch_mcp_in_session", default=False)
_ADOPT_KEY = "agentwatch-mcp-adopt"  # context key: set while agentwatch's client span is current


class _Telemetry:
    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider, schema_url=None)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        self.instruments = sc.create_instruments(meter, sc.MCP_METRICS)

    def record(self, name: str, seconds: float, attributes: Mapping[str, Any]) -> None:
        self.instruments[name].record(seconds, {k: v for k, v in attributes.items() if k in sc.MCP_METRIC_KEYS})


# ========================================================================== reading requests


def _target(method: str, params: Mapping[str, Any] | None) -> str | None:
    if not params:
        return None
    key = "uri" if method.startswith("resources/") else "name"
    value = params.get(key)
    return value if isinstance(value, str) and value else None


def _base_attributes(method: str, target: str | None, request_id: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {sc.MCP_METHOD_NAME: method}
    if request_id is not None:
        attributes[sc.JSONRPC_REQUEST_ID] = str(request_id)
    if method == "tools/call":
        attributes[sc.GEN_AI_OPERATION_NAME] = "execute_tool"
        if target:
            attributes[sc.GEN_AI_TOOL_NAME] = target
    elif method == "prompts/get" and target:
        attributes[sc.GEN_AI_PROMPT_NAME] = target
    elif method.startswith("resources/") and target:
        attributes[sc.MCP_RESOURCE_URI] = target
    return attributes


def _client_protocol_version(method: str, params: Mapping[str, Any] | None, opts: Any) -> str | None:
    if method == "initialize" and params and isinstance(params.get("protocolVersion"), str):
        return params["protocolVersion"]
    headers = opts.get("headers") if isinstance(opts, Mapping) else None
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == "mcp-protocol-version" and isinstance(value, str):
                return value
    meta = params.get("_meta") if params else None
    version = meta.get(_PROTOCOL_META) if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) else None


def _dump(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _is_tool_error(result: Any) -> bool:
    if isinstance(result, Mapping):
        return result.get("isError") is True
    return getattr(result, "is_error", getattr(result, "isError", False)) is True


def _tool_result(result: Any) -> Any:
    if isinstance(result, Mapping):
        return {k: result[k] for k in ("content", "structuredContent", "isError") if k in result}
    return result


def _error(span: Any, attributes: dict[str, Any], exc: BaseException) -> None:
    """``error.type``: the JSON-RPC error code of an MCPError (also ``rpc.response.status_code``), else the
    exception class. A pydantic ValidationError is the SDK's invalid-params answer, and its message holds the
    peer's input: the status says only that (as the SDK's own middleware does)."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = str(getattr(error, "message", "") or exc)[:200]
    if type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("pydantic"):
        code, message = INVALID_PARAMS, "Invalid request parameters"
    if isinstance(code, int):
        attributes[sc.ERROR_TYPE] = attributes[sc.RPC_RESPONSE_STATUS_CODE] = str(code)
    else:
        attributes[sc.ERROR_TYPE] = type(exc).__qualname__
    span.set_attributes({k: attributes[k] for k in (sc.ERROR_TYPE, sc.RPC_RESPONSE_STATUS_CODE) if k in attributes})
    span.set_status(StatusCode.ERROR, message or None)


def _finish_tool(span: Any, attributes: dict[str, Any], result: Any, capture: Any) -> None:
    if _is_tool_error(result):
        attributes[sc.ERROR_TYPE] = TOOL_ERROR
        span.set_attribute(sc.ERROR_TYPE, TOOL_ERROR)
        span.set_status(StatusCode.ERROR)
    if capture is not None:
        span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, clip(_dump(_tool_result(result)), capture))


def _capture_arguments(span: Any, method: str, params: Mapping[str, Any] | None) -> Any:
    """The capture settings for a ``tools/call`` (arguments already on ``span``), else None."""
    if method != "tools/call":
        return None
    capture = capture_content()
    if capture is not None and params and "arguments" in params:
        span.set_attribute(sc.GEN_AI_TOOL_CALL_ARGUMENTS, clip(_dump(params.get("arguments") or {}), capture))
    return capture


def _tool_span(method: str) -> Any:
    """The current ``execute_tool`` span a ``tools/call`` joins instead of starting a sibling, else None."""
    if method != "tools/call":
        return None
    span = trace.get_current_span()
    name = getattr(span, "name", None)
    if span.is_recording() and isinstance(name, str) and name.startswith("execute_tool"):
        return span
    return None


# ==================================================================================== client


class _Client:
    def __init__(self, telemetry: _Telemetry) -> None:
        self.telemetry = telemetry
        # id(write stream) -> (write stream, its Streamable HTTP transport), while the transport's writer runs:
        # how a dispatcher finds the session id its transport got from the server (streams take no attributes).
        self.transports: dict[int, tuple[Any, Any]] = {}

    async def post_writer(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        stream = _post_writer_stream(*args, **kwargs)
        self.transports[id(stream)] = (stream, instance)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            self.transports.pop(id(stream), None)

    def session_id(self, dispatcher: Any) -> str | None:
        stream = getattr(dispatcher, "_write_stream", None)
        entry = self.transports.get(id(stream))
        session_id = getattr(entry[1], "session_id", None) if entry is not None and entry[0] is stream else None
        return session_id if isinstance(session_id, str) and session_id else None

    async def send_raw_request(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        started = run("mcp client span", self._start, *args, **kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        span, owned, attributes, capture, token = started
        begin = time.perf_counter()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            run("mcp client span", self._end, span, owned, attributes, begin, token, instance, exc=exc)
            raise
        run("mcp client span", self._end, span, owned, attributes, begin, token, instance, result=result, capture=capture)
        return result

    async def notify(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        """A notification sent: a span of its own, its trace context in ``params._meta`` (the SDK injects none)."""
        started = run("mcp client span", self._start_notification, *args, **kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        span, attributes, args, kwargs = started
        begin = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                return await wrapped(*args, **kwargs)
        except BaseException as exc:
            run("mcp client span", _error, span, attributes, exc)
            raise
        finally:
            session_id = run("mcp client span", self.session_id, instance)
            if session_id:
                span.set_attribute(sc.MCP_SESSION_ID, session_id)
            span.end()
            run("mcp client span", self.telemetry.record, sc.MCP_CLIENT_OPERATION_DURATION,
                time.perf_counter() - begin, attributes)

    def _start_notification(self, method: str, params: Mapping[str, Any] | None = None, *rest: Any, **kwargs: Any) -> Any:
        attributes = _base_attributes(method, None, None)
        span = self.telemetry.tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        out = dict(params or {})
        meta = dict(out.get("_meta") or {})
        inject(meta, context=trace.set_span_in_context(span))
        out["_meta"] = meta
        return span, attributes, (method, out, *rest), kwargs

    def _start(self, method: str, params: Mapping[str, Any] | None = None, opts: Any = None, **_: Any) -> Any:
        target = _target(method, params)
        attributes = _base_attributes(method, target, None)
        version = _client_protocol_version(method, params, opts)
        if version:
            attributes[sc.MCP_PROTOCOL_VERSION] = version
        span = _tool_span(method)
        owned = span is None
        if span is None:
            name = f"{method} {target}" if target else method
            span = self.telemetry.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        else:
            span.set_attributes(attributes)
        capture = _capture_arguments(span, method, params)
        ctx = trace.set_span_in_context(span)
        token = otel_context.attach(_adopting(ctx))
        return span, owned, attributes, capture, token

    def _end(self, span: Any, owned: bool, attributes: dict[str, Any], begin: float, token: Any, dispatcher: Any, *,
             exc: Any = None, result: Any = None, capture: Any = None) -> None:
        seconds = time.perf_counter() - begin
        otel_context.detach(token)
        session_id = self.session_id(dispatcher)  # known once initialize was answered (span only, not metrics)
        if session_id:
            span.set_attribute(sc.MCP_SESSION_ID, session_id)
        if exc is not None:
            _error(span, attributes, exc)
        elif attributes[sc.MCP_METHOD_NAME] == "tools/call":
            _finish_tool(span, attributes, result, capture)
        if owned:
            span.end()
        self.telemetry.record(sc.MCP_CLIENT_OPERATION_DURATION, seconds, attributes)


async def _detached(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """A Streamable HTTP session's own exchanges (the GET event stream, the DELETE that ends the session) with no
    parent span: they belong to the session, not to the request that happened to open it (an agent framework
    opens its MCP session lazily, inside the first request, and the stream and the DELETE run in that task's
    context: without this, that request's trace would last until the app stops)."""
    token = otel_context.attach(trace.set_span_in_context(trace.INVALID_SPAN))
    try:
        return await wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


def _adopting(ctx: Any) -> Any:
    """``ctx`` marked so the SDK's ``otel_span`` yields the current (agentwatch) span instead of starting one."""
    return otel_context.set_value(_ADOPT_KEY, True, ctx)


def _adopting_otel_span(original: Any) -> Any:
    """The SDK's ``otel_span`` for the dispatcher: inside an agentwatch client span, that span itself (the SDK
    sets its request id and JSON-RPC error on it and injects its context into ``_meta``), else the original."""

    @contextlib.contextmanager
    def otel_span(name: str, **kwargs: Any) -> Any:
        if otel_context.get_value(_ADOPT_KEY) and kwargs.get("kind") == SpanKind.CLIENT:
            span = trace.get_current_span()
            attributes = kwargs.get("attributes") or {}
            if sc.JSONRPC_REQUEST_ID in attributes:
                span.set_attribute(sc.JSONRPC_REQUEST_ID, attributes[sc.JSONRPC_REQUEST_ID])
            yield span
            return
        with original(name, **kwargs) as span:
            yield span

    otel_span._agentwatch_original = original  # type: ignore[attr-defined]
    return otel_span


class _Sessions:
    """``mcp.client.session.duration``: a ClientSession's ``async with`` from entry to exit."""

    def __init__(self, telemetry: _Telemetry) -> None:
        self.telemetry = telemetry

    async def enter(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = await wrapped(*args, **kwargs)
        with contextlib.suppress(AttributeError, TypeError):
            instance._agentwatch_mcp_started = time.perf_counter()
        return result

    async def exit(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            return await wrapped(*args, **kwargs)
        finally:
            begin = getattr(instance, "_agentwatch_mcp_started", None)
            if isinstance(begin, float):
                exc = args[1] if len(args) > 1 else None
                attributes = {sc.ERROR_TYPE: type(exc).__qualname__} if isinstance(exc, BaseException) else {}
                run("mcp session metric", self.telemetry.record, sc.MCP_CLIENT_SESSION_DURATION, time.perf_counter() - begin, attributes)


# ==================================================================================== server


def _post_writer_stream(client: Any, write_stream_reader: Any, read_stream_writer: Any, write_stream: Any,
                        *_: Any, **__: Any) -> Any:
    return write_stream


def _server_session_id(ctx: Any) -> str | None:
    """The transport's session id (Streamable HTTP, stateful): the connection's, which the SDK keeps on the
    request's ``ServerSession``; the ``mcp-session-id`` header otherwise. None on stdio."""
    connection = getattr(getattr(ctx, "session", None), "_connection", None)
    session_id = getattr(connection, "session_id", None)
    if not session_id:
        headers = getattr(getattr(ctx, "request", None), "headers", None)
        session_id = headers.get("mcp-session-id") if isinstance(headers, Mapping) else None
    return session_id if isinstance(session_id, str) and session_id else None


def _middleware_args(ctx: Any, call_next: Any) -> tuple[Any, Any]:
    return ctx, call_next


class _Server:
    def __init__(self, telemetry: _Telemetry) -> None:
        self.telemetry = telemetry

    async def middleware(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        """Replaces the SDK's ``OpenTelemetryMiddleware.__call__`` (one SERVER span per message, ours)."""
        ctx, call_next = _middleware_args(*args, **kwargs)
        started = run("mcp server span", self._start, ctx)
        if started is None:
            return await wrapped(*args, **kwargs)
        span, attributes, capture = started
        begin = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await call_next(ctx)
        except BaseException as exc:
            run("mcp server span", self._end, span, attributes, begin, exc=exc)
            raise
        run("mcp server span", self._end, span, attributes, begin, result=result, capture=capture)
        return result

    def _start(self, ctx: Any) -> Any:
        method = ctx.method
        params = ctx.params
        target = _target(method, params)
        attributes = _base_attributes(method, target, ctx.request_id)
        version = getattr(ctx, "protocol_version", None)
        if isinstance(version, str) and version:
            attributes[sc.MCP_PROTOCOL_VERSION] = version
        session_id = _server_session_id(ctx)
        if session_id:
            attributes[sc.MCP_SESSION_ID] = session_id
        # An HTTP request rides with the message on Streamable HTTP (stateless too); stdio has none.
        attributes[sc.NETWORK_TRANSPORT] = "tcp" if session_id or getattr(ctx, "request", None) is not None else "pipe"
        parent = None
        meta = ctx.meta if isinstance(ctx.meta, Mapping) else getattr(ctx.meta, "model_extra", None)
        if isinstance(meta, Mapping) and "traceparent" in meta:
            carrier = {k: v for k, v in meta.items() if k in ("traceparent", "tracestate") and isinstance(v, str)}
            candidate = extract(carrier)
            if trace.get_current_span(candidate).get_span_context().is_valid:
                parent = candidate
        name = f"{method} {target}" if target else method
        span = self.telemetry.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        capture = _capture_arguments(span, method, params)
        return span, attributes, capture

    def _end(self, span: Any, attributes: dict[str, Any], begin: float, *, exc: Any = None, result: Any = None,
             capture: Any = None) -> None:
        if exc is not None:
            _error(span, attributes, exc)
        elif attributes[sc.MCP_METHOD_NAME] == "tools/call":
            _finish_tool(span, attributes, result, capture)
        span.end()
        self.telemetry.record(sc.MCP_SERVER_OPERATION_DURATION, time.perf_counter() - begin, attributes)

    async def serve(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        """``mcp.server.session.duration``: one serve loop is one session (stdio: the process's one session).
        Counted once: ``serve_loop`` runs ``serve_connection`` inside."""
        if _IN_SESSION.get():
            return await wrapped(*args, **kwargs)
        token = _IN_SESSION.set(True)
        begin = time.perf_counter()
        error: str | None = None
        try:
            return await wrapped(*args, **kwargs)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            _IN_SESSION.reset(token)
            attributes = {sc.NETWORK_TRANSPORT: "tcp" if kwargs.get("session_id") else "pipe"}
            if error:
                attributes[sc.ERROR_TYPE] = error
            run("mcp session metric", self.telemetry.record, sc.MCP_SERVER_SESSION_DURATION, time.perf_counter() - begin, attributes)


# ============================================================================== instrumentor


class AgentwatchMCPInstrumentor(BaseInstrumentor):
    """MCP client and server requests as spans and metrics (see the module docs)."""

    _applied: list[tuple[Any, str]]
    _patched_otel_span: Any = None

    def instrumentation_dependencies(self) -> StrCollection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if importlib.util.find_spec("mcp") is None:
            # Under opentelemetry-instrument the loader skips the dependency check; say "not installed".
            raise ModuleNotFoundError("mcp is not installed", name="mcp")
        self._applied = []
        telemetry = _Telemetry(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        client, server, sessions = _Client(telemetry), _Server(telemetry), _Sessions(telemetry)
        hooks = {
            _DISPATCHER: lambda module: self._dispatcher(module, client),
            _MIDDLEWARE: lambda module: self._wrap(module.OpenTelemetryMiddleware, "__call__", server.middleware),
            _CLIENT: lambda module: (
                self._wrap(module.ClientSession, "__aenter__", sessions.enter),
                self._wrap(module.ClientSession, "__aexit__", sessions.exit),
            ),
            _HTTP_CLIENT: lambda module: [
                self._wrap(module.StreamableHTTPTransport, "post_writer", client.post_writer),
                *(self._wrap(module.StreamableHTTPTransport, name, _detached) for name in _SESSION_EXCHANGES
                  if hasattr(module.StreamableHTTPTransport, name)),
            ],
        }
        # The serve loops live in the runner; the low-level server and the HTTP session manager import them by
        # name, so an app that imported mcp before instrument() holds the originals there (an already wrapped one
        # is left alone).
        for module_name in _SERVE_MODULES:
            hooks[module_name] = lambda module: [
                self._wrap(module, name, server.serve) for name in _SERVE_FUNCTIONS if hasattr(module, name)
            ]
        for module_name, hook in hooks.items():
            wrapt.register_post_import_hook(lambda module, hook=hook, name=module_name: run(f"instrumenting {name}", hook, module), module_name)

    def _wrap(self, owner: Any, name: str, wrapper: Any) -> None:
        if not isinstance(getattr(owner, name, None), wrapt.ObjectProxy):
            wrapt.wrap_function_wrapper(owner, name, wrapper)
            self._applied.append((owner, name))

    def _dispatcher(self, module: Any, client: _Client) -> None:
        self._wrap(module.JSONRPCDispatcher, "send_raw_request", client.send_raw_request)
        self._wrap(module.JSONRPCDispatcher, "notify", client.notify)
        original = module.otel_span
        if getattr(original, "_agentwatch_original", None) is None:
            module.otel_span = _adopting_otel_span(original)
            self._patched_otel_span = module

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, name in getattr(self, "_applied", []):
            unwrap(owner, name)
        self._applied = []
        module = self._patched_otel_span
        if module is not None:
            module.otel_span = module.otel_span._agentwatch_original
            self._patched_otel_span = None
