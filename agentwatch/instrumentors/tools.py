"""
Tool instrumentation for hand-written function-calling loops: the app's tool functions become
``execute_tool {gen_ai.tool.name}`` INTERNAL spans, as the GenAI conventions define them.

Zero code: name the functions in ``AGENTWATCH_TOOL_TARGETS`` and run the app under
``opentelemetry-instrument`` (functions of the script itself included: ``__main__:get_weather``)::

    AGENTWATCH_TOOL_TARGETS=tools:get_weather,tools:Shop.lookup=lookup_order opentelemetry-instrument python app.py

Each span carries ``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name`` (the function's name, or
``=name``), ``gen_ai.tool.type=function``, ``gen_ai.tool.description`` (the first line of the docstring)
and ``error.type`` when the tool raised; ``gen_ai.execute_tool.duration`` records its duration with the
same attributes as the Gemini instrumentor's automatic-function-calling tools.

API
---
"""

from __future__ import annotations

import inspect
from typing import Any

from opentelemetry import trace

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.instrumentors._agents import tool_links
from agentwatch.instrumentors._agents.calls import Call, Role
from agentwatch.instrumentors._agents.instrumentor import AgentInstrumentor

__all__ = ["AgentwatchToolInstrumentor", "ToolRole", "ROLE"]

_MAX_DESCRIPTION = 256


def description(function: Any) -> str | None:
    """The first non-empty line of ``function``'s docstring (clipped), or None."""
    try:
        doc = inspect.getdoc(function)
    except Exception:  # noqa: BLE001 - a strange object: no description
        return None
    if not doc:
        return None
    first = doc.strip().splitlines()[0].strip()
    return first[:_MAX_DESCRIPTION] or None


class ToolRole(Role):
    role = "tool"
    entry_point = "agentwatch_tools"

    def target_name(self, target: Any) -> str:
        return target.name or target.path.rsplit(".", 1)[-1]

    def span_name(self, name: str) -> str:
        return f"execute_tool {name}"

    def _metric_attributes(self, call: Call) -> dict[str, Any]:
        return {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: call.name, sc.GEN_AI_TOOL_TYPE: "function"}

    def start_attributes(self, call: Call) -> dict[str, Any]:
        attributes = self._metric_attributes(call)
        text = description(call.function) if call.function is not None else None
        if text:
            attributes[sc.GEN_AI_TOOL_DESCRIPTION] = text
        parent = trace.get_current_span().get_span_context()
        call.state = tool_links.take(parent.trace_id, call.name, _arguments(call)) if parent.is_valid else None
        if call.state is not None and call.state[0]:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = call.state[0]
        return attributes

    def start_links(self, call: Call) -> list[Any] | None:
        """A link to the model call whose response asked for this tool (same name and arguments)."""
        if call.state is None:
            return None
        return [trace.Link(call.state[1])]

    def instruments(self) -> dict[str, Any]:
        if self._instruments is None:
            from opentelemetry import metrics

            from agentwatch.instrumentors._agents.calls import SCOPE
            from agentwatch.version import __version__

            meter = metrics.get_meter(SCOPE, __version__, meter_provider=self._meter_provider)
            metric = next(m for m in sc.GENAI_METRICS if m.name == sc.GEN_AI_EXECUTE_TOOL_DURATION)
            self._instruments = sc.create_instruments(meter, (metric,))
        return self._instruments

    def finish(self, call: Call, result: Any) -> None:
        tool_links.finished(call.span, call.name)
        self.instruments()[sc.GEN_AI_EXECUTE_TOOL_DURATION].record(call.duration, self._metric_attributes(call))

    def failed(self, call: Call, error: BaseException) -> None:
        tool_links.finished(call.span, call.name)  # the model is usually sent the error
        attributes = {**self._metric_attributes(call), sc.ERROR_TYPE: type(error).__qualname__}
        self.instruments()[sc.GEN_AI_EXECUTE_TOOL_DURATION].record(call.duration, attributes)


def _arguments(call: Call) -> dict[str, Any]:
    """The call's arguments by parameter name (``self`` left out), as the model would have sent them."""
    try:
        bound = inspect.signature(call.function).bind_partial(*call.args, **call.kwargs)
        return dict(bound.arguments)
    except (TypeError, ValueError):
        return dict(call.kwargs)


ROLE = ToolRole()


class AgentwatchToolInstrumentor(AgentInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_tools``."""

    roles = ((ROLE, ev.AGENTWATCH_TOOL_TARGETS),)
