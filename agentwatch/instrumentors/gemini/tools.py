"""Tools: the names a request offers, and ``execute_tool`` spans for automatic function calling.

When Python functions are passed as tools, the SDK runs them between round trips
(``google.genai._extra_utils``). Each run becomes an ``execute_tool {name}`` INTERNAL span, a child of
the call span, with the function call's id, its description (docstring) and -- with content capture on --
its arguments and result; ``gen_ai.execute_tool.duration`` records its duration. When the official
instrumentation records ``generate_content`` it records these runs too, and this module steps aside.
"""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.instrumentors.gemini import handoff
from agentwatch.instrumentors.gemini.content import json_text
from agentwatch.instrumentors.gemini.extract import field
from agentwatch.instrumentors.gemini.telemetry import SKIPPED, WHERE, Telemetry

MODULE = "google.genai._extra_utils"
# The functions of google.genai._extra_utils wrapped here: (name, is async, what it does).
FUNCTIONS = (
    ("get_function_response_parts", False, "tool_calls"),  # runs the tools a response asked for
    ("get_function_response_parts_async", True, "tool_calls"),
    ("invoke_function_from_dict_args", False, "invoke"),  # runs one tool
    ("invoke_function_from_dict_args_async", True, "invoke"),
)

# The function calls (name, id) of the response whose tools are being run, for gen_ai.tool.call.id.
_PENDING_TOOL_CALLS: contextvars.ContextVar[list[tuple[str, str | None]] | None] = contextvars.ContextVar(
    "agentwatch_gemini_tool_calls", default=None
)


# --------------------------------------------------------------------------- the tools of a request
def _is_python_function(tool: Any) -> bool:
    return callable(tool) and not hasattr(tool, "function_declarations")


def tool_names(config: Any) -> list[str]:
    """Names of the tools a request offers: Python callables and function declarations."""
    names: list[str] = []
    for tool in field(config, "tools") or []:
        if _is_python_function(tool):
            names.append(getattr(tool, "__name__", "function"))
            continue
        for declaration in field(tool, "function_declarations") or []:
            name = field(declaration, "name")
            if name:
                names.append(str(name))
    return names


def afc_enabled(config: Any) -> bool:
    """Whether automatic function calling may send more than one request (Python callables as tools)."""
    tools = field(config, "tools") or []
    if not any(_is_python_function(t) for t in tools):
        return False
    afc = field(config, "automatic_function_calling")
    return not bool(field(afc, "disable"))


def function_calls(response: Any) -> list[tuple[str, str | None]]:
    """(name, id) of each function call in the first candidate (the one the SDK runs tools for)."""
    candidates = field(response, "candidates") or []
    if not candidates:
        return []
    calls = []
    for part in field(field(candidates[0], "content"), "parts") or []:
        call = field(part, "function_call")
        if call is not None and field(call, "name"):
            call_id = field(call, "id")
            calls.append((str(field(call, "name")), str(call_id) if call_id else None))
    return calls


# --------------------------------------------------------------------------- execute_tool spans
class ToolRun:
    """One run of a user function by the SDK's automatic function calling: an ``execute_tool`` INTERNAL span."""

    def __init__(self, tel: Telemetry, arguments: Any, function: Any):
        self.tel = tel
        self.name = str(getattr(function, "__name__", None) or type(function).__name__)
        self.started = time.perf_counter()
        attrs: dict[str, Any] = self._bounded_attributes()
        pending = _PENDING_TOOL_CALLS.get()
        if pending:
            for index, (name, call_id) in enumerate(pending):
                if name == self.name:
                    del pending[index]
                    if call_id:
                        attrs[sc.GEN_AI_TOOL_CALL_ID] = call_id
                    break
        doc = inspect.getdoc(function) if callable(function) else None
        if doc:
            attrs[sc.GEN_AI_TOOL_DESCRIPTION] = doc if len(doc) <= 1024 else doc[:1024] + "..."
        if tel.capture.on_span and arguments is not None:
            attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = json_text(arguments, tel.capture)
        self.span = tel.tracer.start_span(f"execute_tool {self.name}", kind=SpanKind.INTERNAL, attributes=attrs)
        self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def _bounded_attributes(self) -> dict[str, Any]:
        """What the span starts with and the duration metric carries (bounded: no call id, no content)."""
        return {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: self.name, sc.GEN_AI_TOOL_TYPE: "function"}

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        """End the tool span and record its duration."""
        try:
            guard.run(
                f"{WHERE}: recording a tool run", self._finish, result, error, outcome="telemetry of that run skipped"
            )
        finally:
            self.span.end()

    def _finish(self, result: Any, error: BaseException | None) -> None:
        otel_context.detach(self.token)
        metric_attrs = self._bounded_attributes()
        if error is not None:
            # The SDK wraps the function's exception in FunctionInvocationError (whose message
            # repeats the arguments) and hands the model an error result: report the original.
            original = error.__context__ if type(error).__name__ == "FunctionInvocationError" else None
            cause = original if isinstance(original, BaseException) else error
            metric_attrs[sc.ERROR_TYPE] = type(cause).__qualname__
            self.span.set_attribute(sc.ERROR_TYPE, type(cause).__qualname__)
            self.span.set_status(Status(StatusCode.ERROR, type(cause).__qualname__))
            self.span.record_exception(cause)
        elif self.tel.capture.on_span:
            self.span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, json_text(result, self.tel.capture))
        self.tel.tool_duration.record(time.perf_counter() - self.started, metric_attrs)


def _tool_run(tel: Telemetry, args: tuple, kwargs: dict) -> ToolRun | None:
    if handoff.official_generates():
        return None  # the official instrumentation records its own execute_tool spans
    arguments = args[0] if args else kwargs.get("args")
    function = args[1] if len(args) > 1 else kwargs.get("function_to_invoke")
    return ToolRun(tel, arguments, function)


def _start(tel: Telemetry, args: tuple, kwargs: dict) -> ToolRun | None:
    return guard.run(f"{WHERE}: tool span start", _tool_run, tel, args, kwargs, outcome=SKIPPED)


def _pending_calls(args: tuple, kwargs: dict) -> list[tuple[str, str | None]] | None:
    return guard.run(
        f"{WHERE}: tool call ids", function_calls, args[0] if args else kwargs.get("response"), outcome=SKIPPED
    )


def _invoke_wrapper(tel: Telemetry, is_async: bool) -> Callable[..., Any]:
    def sync_wrapper(wrapped, instance, args, kwargs):
        run = _start(tel, args, kwargs)
        if run is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            run.finish(error=error)
            raise
        run.finish(result)
        return result

    async def async_wrapper(wrapped, instance, args, kwargs):
        run = _start(tel, args, kwargs)
        if run is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            run.finish(error=error)
            raise
        run.finish(result)
        return result

    return async_wrapper if is_async else sync_wrapper


def _tool_calls_wrapper(is_async: bool) -> Callable[..., Any]:
    def sync_wrapper(wrapped, instance, args, kwargs):
        token = _PENDING_TOOL_CALLS.set(_pending_calls(args, kwargs))
        try:
            return wrapped(*args, **kwargs)
        finally:
            _PENDING_TOOL_CALLS.reset(token)

    async def async_wrapper(wrapped, instance, args, kwargs):
        token = _PENDING_TOOL_CALLS.set(_pending_calls(args, kwargs))
        try:
            return await wrapped(*args, **kwargs)
        finally:
            _PENDING_TOOL_CALLS.reset(token)

    return async_wrapper if is_async else sync_wrapper


def wrapper(tel: Telemetry, kind: str, is_async: bool) -> Callable[..., Any]:
    """The wrapt wrapper of one of :data:`FUNCTIONS`."""
    return _invoke_wrapper(tel, is_async) if kind == "invoke" else _tool_calls_wrapper(is_async)
