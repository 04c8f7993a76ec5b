"""The ASGI layer agentwatch puts into every FastAPI app's middleware stack.

``build(app, stack)`` is called with the stack FastAPI just built (its top is
Starlette's ``ServerErrorMiddleware``). By default (agentwatch's server layer, see
:mod:`agentwatch.web.server`) the new top is one agentwatch layer that also opens the server span::

    ServerLayer: server span + http.server.* metrics, and everything AgentwatchMiddleware does
        -> ServerErrorMiddleware(handler: the app's, else agentwatch's JSON 500)
            -> the app's middlewares -> ExceptionMiddleware (FastAPI's handlers, request_id added) -> routes

With the contrib FastAPI instrumentation instead (``AGENTWATCH_SERVER_LAYER=contrib``, or an app that
instruments itself), it returns the same top object, with :class:`AgentwatchMiddleware` inserted right
under it, so the contrib instrumentation (which expects that top) still wraps everything::

    [contrib server span] -> ServerErrorMiddleware(handler: the app's, else agentwatch's JSON 500)
        -> AgentwatchMiddleware: request/session ids (context, span, baggage, response headers),
           health endpoints, lifespan -> startup checks / draining
            -> the app's middlewares -> ExceptionMiddleware (FastAPI's handlers, request_id added) -> routes

Health endpoints answer before the app's own middlewares (so an auth
middleware cannot turn a kubelet probe into a 401) unless the app has its own
route at the same path: the app's route then wins, with one warning.

A mounted app (``app.mount("/sub", FastAPI())``) has its own stack, hence its own
AgentwatchMiddleware: it sees the request id already in the scope and passes the
request straight on, so the ids, headers and baggage are set once, by the
enclosing app's layer, and ``/sub/health/*`` is the mounted app's own business.

Never breaking the app: each per-request step is guarded (:mod:`agentwatch.distro.guard`); a step
that raises is said once (``web layer: <step> failed ...``) and skipped. A request
whose ids cannot be set up, or a probe our endpoint fails to answer, goes to the
app untouched, so it gets exactly the app's own answer.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import failed, guard, run, strict
from agentwatch.web import checks, config, errors, health
from agentwatch.web import request_id as rid

_REQUEST_HEADER = rid.HEADER.encode()
_SESSION_HEADER = rid.SESSION_HEADER.encode()


def _app_paths(app: Any) -> set[str]:
    paths: set[str] = set()
    routes = list(getattr(app, "routes", []) or [])
    try:
        from fastapi.routing import iter_route_contexts

        contexts = list(iter_route_contexts(routes))
    except Exception:  # noqa: BLE001 - older FastAPI: plain routes
        contexts = routes
    for route in contexts:
        for attribute in ("path_format", "path"):
            value = getattr(route, attribute, None)
            if isinstance(value, str):
                paths.add(value)
    return paths


def health_routes(app: Any, prefix: str) -> dict[str, Any]:
    """Our path -> handler, minus the paths the app serves itself (one warning each)."""
    taken = _app_paths(app)
    routes: dict[str, Any] = {}
    for suffix, handler in health.ENDPOINTS.items():
        path = prefix + suffix
        if path in taken:
            warn_once(
                f"health:route:{path}",
                f"the app has its own route {path}; agentwatch's health endpoint at that path is not added",
            )
            continue
        routes[path] = handler
    return routes


class AgentwatchMiddleware:
    """Each per-request step is guarded (``agentwatch.distro.guard``): one that raises is said once and skipped. If the
    ids cannot be set up, the request goes to the app untouched -- and agentwatch's error handlers,
    seeing no id in the scope, leave its error responses as the app makes them -- so a fault of ours
    costs the request nothing but agentwatch's additions."""

    def __init__(self, app: Any, routes: dict[str, Any]):
        self.app = app
        self.routes = routes
        # AGENTWATCH_SECURITY_HEADERS, computed once per app (None: off, the default).
        self.security = run("web layer: security headers", _security_headers,
                            outcome="that app's responses go without security headers")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if kind != "http" or rid.SCOPE_KEY in scope:
            # Not HTTP, or a request the agentwatch layer of an enclosing app (this app is mounted in it,
            # ``app.mount("/sub", this)``) has set up already: that layer does everything, once.
            await self.app(scope, receive, send)
            return
        await self._serve(scope, receive, send, None)

    async def _serve(self, scope: dict, receive: Any, send: Any, exchange: Any) -> None:
        """One HTTP request; ``exchange`` (the server layer's span state, or None) sees each message sent."""
        with guard("web layer: request ids", "such requests are passed to the app untouched") as ids:
            request_id = rid.from_scope(scope)
            session_id = rid.session_from_scope(scope)
            tokens = rid.set_current(request_id, session_id)
        if ids.error is not None:
            scope.pop(rid.SCOPE_KEY, None)  # tells the error handlers this request is not ours to touch
            scope.pop(rid.SESSION_SCOPE_KEY, None)
            # Outside the guard, so an exception of the app's is not chained to ours.
            await self.app(scope, receive, send if exchange is None else exchange.wrap(send))
            return
        baggage_token = run("web layer: request baggage", _attach_baggage, request_id, session_id,
                            outcome="the ids are not put in W3C baggage")
        run("web layer: span attributes", _annotate_span, request_id, session_id,
            outcome="the server span goes without agentwatch.request.id")
        app_failed = False
        try:
            run("web layer: startup checks", _ensure_startup, outcome="they are not started by requests")
            handler = run("web layer: health routing", _health_handler, self.routes, scope,
                          outcome="requests are passed to the app")
            security = self.security.extra(scope.get("scheme", "http")) if self.security is not None else ()
            if handler is not None and await _serve_health(
                handler, scope, _with_security(send if exchange is None else exchange.wrap(send), security), request_id
            ):
                return

            async def send_with_id(message: dict) -> None:
                if message.get("type") == "http.response.start":  # body chunks carry no headers
                    message = run("web layer: response headers", _with_id_headers, message, request_id, session_id,
                                  security, default=message,
                                  outcome="responses go without X-Request-ID / X-Session-ID / security headers")
                if exchange is None:
                    await send(message)
                else:  # the server layer's span, in the same wrapper (one layer of send, not two)
                    exchange.before_send(message)
                    await send(message)
                    exchange.after_send(message)

            await self.app(scope, receive, send_with_id)
        except BaseException:
            app_failed = True
            raise
        finally:
            run("web layer: context cleanup", _detach, baggage_token, outcome="continuing")
            if not app_failed:
                # On an exception the ids stay set: the server logs the traceback after the
                # error response, in this request's own task, and that line should carry them.
                run("web layer: context cleanup", rid.reset, tokens, outcome="continuing")

    def _lifespan_receive(self, receive: Any):
        async def wrapped() -> dict:
            message = await receive()
            kind = message.get("type")
            with guard("web layer: lifespan hooks", "startup checks and draining follow requests and signals only"):
                if kind == "lifespan.startup":
                    health.state().ensure_startup()
                elif kind == "lifespan.shutdown":
                    health.start_draining("lifespan shutdown")
            return message

        return wrapped


def _ensure_startup() -> None:
    st = health.state()
    if st.startup_status == health.STARTING:
        st.ensure_startup()


def _health_handler(routes: dict[str, Any], scope: dict) -> Any:
    """Our health endpoint for this request, or None."""
    if not routes or scope.get("method") not in ("GET", "HEAD"):
        return None
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return routes.get(path) or (routes.get(path[:-1]) if path.endswith("/") else None)


async def _serve_health(handler: Any, scope: dict, send: Any, request_id: str) -> bool:
    """Answer a probe; False when our endpoint failed before answering (the app then gets the request)."""
    started = sending_failed = False

    async def tracking_send(message: dict) -> None:
        nonlocal started, sending_failed
        try:
            await send(message)
        except BaseException:
            sending_failed = True  # the server's or the client's failure, not ours: it propagates
            raise
        if message.get("type") == "http.response.start":
            started = True

    try:
        await health.serve(handler, scope, tracking_send, request_id)
        return True
    except Exception as error:
        if sending_failed or strict():
            raise
        outcome = (
            "that probe's answer was cut short" if started else "probes are passed to the app, as without agentwatch"
        )
        failed("web layer: health endpoint", error, outcome)
        return started


def _security_headers() -> Any:
    from agentwatch.web import security_headers

    return security_headers.from_settings(config.settings())


def _with_security(send: Any, security: tuple[tuple[bytes, bytes], ...]) -> Any:
    """``send`` adding the security headers to a response start (for the health endpoints' answers)."""
    if not security:
        return send

    async def send_with_security(message: dict) -> None:
        if message.get("type") == "http.response.start":
            message = run("web layer: response headers", _with_extra_headers, message, list(security), default=message,
                          outcome="responses go without security headers")
        await send(message)

    return send_with_security


def _with_id_headers(
    message: dict, request_id: str, session_id: str | None, security: tuple[tuple[bytes, bytes], ...] = ()
) -> dict:
    """The response start with ``X-Request-ID`` (and ``X-Session-ID``) and the security headers added, each
    unless the app set it (any case)."""
    if message.get("type") != "http.response.start":
        return message
    extra = [(_REQUEST_HEADER, request_id.encode())]
    if session_id is not None:
        extra.append((_SESSION_HEADER, session_id.encode()))
    if security:
        extra += security
    headers = list(message.get("headers") or [])  # as _with_extra_headers, inline: once per response
    present = {name.lower() for name, _ in headers}
    missing = [item for item in extra if item[0] not in present]
    return {**message, "headers": headers + missing} if missing else message


def _with_extra_headers(message: dict, extra: list[tuple[bytes, bytes]]) -> dict:
    """The response start with the ``extra`` headers whose names it does not have yet (compared lower-cased)."""
    if message.get("type") != "http.response.start":
        return message
    headers = list(message.get("headers") or [])
    present = {name.lower() for name, _ in headers}
    missing = [item for item in extra if item[0] not in present]
    return {**message, "headers": headers + missing} if missing else message


def _annotate_span(request_id: str, session_id: str | None = None) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(rid.REQUEST_ID_KEY, request_id)
        if session_id is not None:
            span.set_attribute(rid.SESSION_ID_KEY, session_id)


def _attach_baggage(request_id: str, session_id: str | None) -> Any:
    """Put the ids in the W3C baggage of the request's context (sent on by the httpx instrumentation)."""
    ctx = baggage.set_baggage(rid.REQUEST_ID_KEY, request_id)
    if session_id is not None:
        ctx = baggage.set_baggage(rid.SESSION_ID_KEY, session_id, ctx)
    return otel_context.attach(ctx)


def _detach(token: Any) -> None:
    if token is not None:
        otel_context.detach(token)


def build(app: Any, stack: Any, layer: Any = None) -> Any:
    """Insert agentwatch into ``stack`` (FastAPI's freshly built middleware stack); never raises.

    ``layer(stack, routes)``, when given, builds the new top of the stack instead of inserting
    :class:`AgentwatchMiddleware` under ``ServerErrorMiddleware`` (the server layer of
    :mod:`agentwatch.web.server`, which goes above it).
    """
    s = config.settings()
    return run("adding agentwatch's web layer to the app", _insert, app, stack, s, layer, default=stack,
               outcome="that app goes without health endpoints, request ids and error handlers")


def _insert(app: Any, stack: Any, s: config.WebSettings, layer: Any = None) -> Any:
    from starlette.middleware.errors import ServerErrorMiddleware

    checks.load_entry_points()
    routes = health_routes(app, s.prefix) if s.health_enabled else {}
    if s.error_handlers:
        errors.install(stack, s.error_detail)
    if isinstance(stack, ServerErrorMiddleware):
        if layer is not None:
            return layer(stack, routes)
        stack.app = AgentwatchMiddleware(stack.app, routes)  # pyright: ignore[reportAttributeAccessIssue]
        return stack
    return AgentwatchMiddleware(stack, routes)
