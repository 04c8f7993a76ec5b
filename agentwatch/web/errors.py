"""Safe error responses.

- An unhandled exception in a route answers JSON 500
  ``{"error": "internal_server_error", "message": ..., "request_id": ...}``;
  the message is generic unless ``AGENTWATCH_ERROR_DETAIL=true`` (then the
  exception type and its scrubbed message). The exception is recorded on the
  server span (once, scrubbed message, ``error.type``) and counted in
  ``agentwatch.http.server.errors`` by exception type and route template.
- ``HTTPException`` and request-validation errors keep FastAPI's status and
  body, with ``"request_id"`` added to a JSON object body.
- Handlers the app registered itself (for 500/``Exception``, ``HTTPException``,
  ``RequestValidationError``...) are left alone: they win.
- A fault of ours never changes the answer's fate: if the JSON 500 cannot be
  built, Starlette's plain 500 is sent; if the request id cannot be added,
  FastAPI's body is sent as it is; a request the middleware could not set up
  (no id in its scope) gets the app's own error responses, untouched.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from agentwatch.distro.guard import guard, run
from agentwatch.web import telemetry
from agentwatch.web._scrub import scrub_text
from agentwatch.web.request_id import (
    HEADER,
    REQUEST_ID_KEY,
    SCOPE_KEY,
    SESSION_HEADER,
    SESSION_SCOPE_KEY,
    current_request_id,
    new_request_id,
)

GENERIC_MESSAGE = "An internal error occurred. Quote the request id when reporting it."


def _request_id(scope: dict) -> str:
    return scope.get(SCOPE_KEY) or current_request_id() or new_request_id()


def _route(scope: dict) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _record_on_span(exc: BaseException, request_id: str) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    span = trace.get_current_span()
    if not span.is_recording():
        return
    error_type = type(exc).__qualname__
    message = scrub_text(str(exc))
    events = getattr(span, "events", ()) or ()
    already = any(
        event.name == "exception" and (event.attributes or {}).get("exception.type", "").endswith(type(exc).__name__)
        for event in events
    )
    if already:
        _scrub_recorded_events(span)
    else:
        span.record_exception(
            exc,
            attributes={"exception.message": message, "exception.stacktrace": _stacktrace(exc)},
            escaped=True,
        )
    span.set_attribute("error.type", error_type)
    span.set_attribute(REQUEST_ID_KEY, request_id)
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"[:500]))


def _stacktrace(exc: BaseException) -> str:
    import traceback

    return scrub_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def _scrub_recorded_events(span: Any) -> None:
    """Scrub the message and stack trace of exception events another instrumentation already put on the span.

    SDK events are immutable, so each is replaced in the span's event list (SDK
    internals, hence guarded: without them the exporter-side scrubber still applies).
    """
    with guard("web layer: exception event scrubbing", "the exporters' scrubber still scrubs those events"):
        from opentelemetry.sdk.trace import Event

        events = span._events
        queue = events._dq
        for index, event in enumerate(list(queue)):
            if event.name != "exception":
                continue
            attributes = dict(event.attributes or {})
            changed = False
            for key in ("exception.message", "exception.stacktrace"):
                value = attributes.get(key)
                if isinstance(value, str):
                    scrubbed = scrub_text(value)
                    if scrubbed != value:
                        attributes[key] = scrubbed
                        changed = True
            if changed:
                queue[index] = Event(event.name, attributes, event.timestamp)


def make_server_error_handler(detail: bool, fallback: Callable[[Any, Exception], Any]):
    """The JSON 500 handler. ``fallback`` (the server error middleware's own response: Starlette's plain
    500) answers for requests agentwatch did not set up and when building the JSON answer fails."""

    async def agentwatch_server_error(request, exc: Exception):
        scope = request.scope
        request_id = scope.get(SCOPE_KEY)
        if not request_id:  # the request-id step failed for this request: leave it to the app
            return fallback(request, exc)
        # The answer matters more than the telemetry: each is its own step.
        run("web layer: error telemetry", _record_on_span, exc, request_id,
            outcome="exceptions are not recorded on the server span")
        run("web layer: error metrics", _count_error, exc, scope,
            outcome="errors are not counted in agentwatch.http.server.errors")
        answer = run("web layer: error response", _json_500, scope, exc, detail, request_id,
                     outcome="unhandled exceptions get the server's plain 500 answer")
        # (Outside the guard: a fault of the fallback is the server's own, as without agentwatch.)
        return answer if answer is not None else fallback(request, exc)

    return agentwatch_server_error


def _count_error(exc: BaseException, scope: dict) -> None:
    telemetry.record_error(type(exc).__qualname__, _route(scope), scope.get("method"))


def _json_500(scope: dict, exc: Exception, detail: bool, request_id: str) -> Any:
    from starlette.responses import JSONResponse

    message = GENERIC_MESSAGE
    if detail:
        text = scrub_text(str(exc))
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    headers = {HEADER: request_id}
    session_id = scope.get(SESSION_SCOPE_KEY)
    if session_id:
        headers[SESSION_HEADER] = session_id
    return JSONResponse(
        {"error": "internal_server_error", "message": message, "request_id": request_id},
        status_code=500,
        headers=headers,
    )


def _with_request_id(original):
    async def handler(request, exc):
        response = original(request, exc)  # FastAPI's own handler: its failures are the app's, unchanged
        if inspect.isawaitable(response):
            response = await response
        if SCOPE_KEY not in request.scope:  # the request-id step failed for this request: leave it as is
            return response
        with_id = run("web layer: request id in error bodies", _add_request_id, response, request.scope,
                      outcome="FastAPI's error bodies are sent as they are")
        return response if with_id is None else with_id

    return handler


def _add_request_id(response: Any, scope: dict) -> Any:
    """FastAPI's JSON error response with ``"request_id"`` added to its body, or None to keep it as it is."""
    from starlette.responses import JSONResponse

    if isinstance(response, JSONResponse) and response.body:
        data = json.loads(bytes(response.body))
        if isinstance(data, dict) and "request_id" not in data:
            data["request_id"] = _request_id(scope)
            headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
            return JSONResponse(data, status_code=response.status_code, headers=headers)
    return None


def _fastapi_defaults() -> dict[Any, Any]:
    from fastapi import exception_handlers as defaults
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    return {
        HTTPException: defaults.http_exception_handler,
        RequestValidationError: defaults.request_validation_exception_handler,
    }


def install(stack: Any, detail: bool) -> None:
    """Fit the error handling into a freshly built middleware stack (top: ServerErrorMiddleware)."""
    from starlette.middleware.errors import ServerErrorMiddleware
    from starlette.middleware.exceptions import ExceptionMiddleware

    if isinstance(stack, ServerErrorMiddleware) and stack.handler is None:
        stack.handler = make_server_error_handler(detail, stack.error_response)
    defaults = _fastapi_defaults()
    node, depth = stack, 0
    while node is not None and depth < 64:
        if isinstance(node, ExceptionMiddleware):
            handlers = node._exception_handlers
            for exc_class, default in defaults.items():
                if handlers.get(exc_class) is default:
                    handlers[exc_class] = _with_request_id(default)
            break
        node, depth = getattr(node, "app", None), depth + 1
