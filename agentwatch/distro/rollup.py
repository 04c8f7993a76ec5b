"""Per-request GenAI roll-up: what did this request cost, in one attribute.

``GenAIRollupSpanProcessor`` watches span ends. When a GenAI call span ends
(it carries ``gen_ai.operation.name`` and is not a per-round-trip child), its
billed tokens and cost are added to the SERVER span of the same trace that is
still open in this process -- the request that made the call -- as running
totals, so the server span is exported with:

- ``agentwatch.request.gen_ai.cost`` (USD; only when at least one call had a price)
- ``agentwatch.request.gen_ai.input_tokens`` / ``.output_tokens``
- ``agentwatch.request.gen_ai.calls`` (GenAI call spans that ended inside the request)
- ``agentwatch.request.gen_ai.tool_calls`` / ``.tool_errors`` / ``.transfers`` (``execute_tool`` spans that
  ended inside the request, those with an ``error.type`` or an error status, and agent transfers -- ADK's
  ``transfer_to_agent`` tool); set once the request has one

Per agent: an ``invoke_agent`` span (``gen_ai.operation.name=invoke_agent``, from
``AGENTWATCH_AGENT_TARGETS`` or any instrumentation) gets the same running totals for the spans
*under it* (followed by parent span id as spans start, so concurrent agents in one trace are kept
apart; a nested agent counts its own calls, not its parent's):

- ``agentwatch.agent.gen_ai.calls`` / ``.input_tokens`` / ``.output_tokens``
- ``agentwatch.agent.tool_calls`` / ``agentwatch.agent.tool_errors`` (``execute_tool`` spans; errors by ``error.type``)

It works on attribute names only (it imports no instrumentor), keeps state
only for SERVER spans that are open (bounded), and never raises into the SDK.
When one trace has several open SERVER spans in this process (a service
calling itself), calls are added to the most recently started one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch.distro.guard import failed, guarded, strict

OPERATION = "gen_ai.operation.name"
ROUND_TRIP = "agentwatch.gen_ai.round_trip"
INPUT = "gen_ai.usage.input_tokens"
OUTPUT = "gen_ai.usage.output_tokens"
COST = "agentwatch.gen_ai.usage.cost"

REQUEST_COST = "agentwatch.request.gen_ai.cost"
REQUEST_INPUT = "agentwatch.request.gen_ai.input_tokens"
REQUEST_OUTPUT = "agentwatch.request.gen_ai.output_tokens"
REQUEST_CALLS = "agentwatch.request.gen_ai.calls"
REQUEST_TOOL_CALLS = "agentwatch.request.gen_ai.tool_calls"
REQUEST_TOOL_ERRORS = "agentwatch.request.gen_ai.tool_errors"
REQUEST_TRANSFERS = "agentwatch.request.gen_ai.transfers"
TOOL = "execute_tool"
TOOL_NAME = "gen_ai.tool.name"
ERROR_TYPE = "error.type"
# The tool an agent framework hands the conversation to another agent with (Google ADK's name).
TRANSFER_TOOLS = frozenset({"transfer_to_agent"})

AGENT_CALLS = "agentwatch.agent.gen_ai.calls"
AGENT_INPUT = "agentwatch.agent.gen_ai.input_tokens"
AGENT_OUTPUT = "agentwatch.agent.gen_ai.output_tokens"
AGENT_TOOL_CALLS = "agentwatch.agent.tool_calls"
AGENT_TOOL_ERRORS = "agentwatch.agent.tool_errors"
_MAX_AGENT_SPANS = 65536  # open spans under agents (leaked, never-ended spans must not grow memory)

_MAX_OPEN_TRACES = 4096
# Operations that are not billed model calls (they carry no usage anyway); "critique" is the
# agent planner instrumentor's evaluation step (agentwatch.instrumentors.planner).
_NOT_CALLS = {"execute_tool", "invoke_agent", "invoke_workflow", "plan", "retrieval", "create_agent", "critique"}


def _failed(where: str, error: Exception) -> None:
    """What ``@guarded`` does with a failure: re-raise under strict mode, else say it once."""
    if strict():
        raise error
    failed(where, error)


class _Totals:
    __slots__ = ("span", "span_id", "cost", "input", "output", "calls", "priced", "tools", "tool_errors", "transfers")

    def __init__(self, span: Any):
        self.span = span
        self.span_id = span.context.span_id
        self.cost = 0.0
        self.input = 0
        self.output = 0
        self.calls = 0
        self.priced = False
        self.tools = 0
        self.tool_errors = 0
        self.transfers = 0


class _AgentTotals:
    __slots__ = ("span", "calls", "input", "output", "tools", "tool_errors")

    def __init__(self, span: Any):
        self.span = span
        self.calls = self.input = self.output = self.tools = self.tool_errors = 0


def _stored(span: Any) -> dict:
    attributes = getattr(span, "_attributes", None)
    stored = getattr(attributes, "_dict", attributes)  # the SDK's BoundedAttributes keeps a dict
    if type(stored) is not dict:
        stored = dict(span.attributes or {})
    return stored


class GenAIRollupSpanProcessor(SpanProcessor):
    """Sums GenAI cost and tokens onto the request's server span and each agent span (see the module docstring)."""

    def __init__(self) -> None:
        self._open: OrderedDict[int, list[_Totals]] = OrderedDict()
        self._lock = threading.Lock()
        # span id -> the totals of the innermost open invoke_agent span it is under (itself included)
        self._agent_of: dict[int, _AgentTotals] = {}

    # on_start and on_end see every span of the process: the checks that let a span through (not a
    # SERVER span, not a GenAI call) run first, in a try block (free when nothing raises) rather than
    # under the guard decorator's wrapper; the work behind them is guarded as before.
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        try:
            server = span.kind is SpanKind.SERVER
            # Agent bookkeeping only inside an open agent span, or for a span that may start one.
            agent = not server and (bool(self._agent_of) or span.name.startswith("invoke_agent"))
        except Exception as error:  # noqa: BLE001 - the guard's rule, inline: a span processor never raises into the SDK
            _failed("GenAI roll-up (span start)", error)
            return
        if server:
            self._open_request(span)
        elif agent:
            self._maybe_agent(span)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            if span.kind is SpanKind.SERVER:
                self._close(span)
                return
            stored = _stored(span)
            call = OPERATION in stored
        except Exception as error:  # noqa: BLE001 - the guard's rule, inline: a span processor never raises into the SDK
            _failed("GenAI roll-up (span end)", error)
            return
        if self._agent_of:
            self._add_to_agent(span, stored if call else None)
        if call:
            self._add_call(span)

    @guarded("GenAI roll-up (agent span start)")
    def _maybe_agent(self, span: Any) -> None:
        parent = span.parent
        totals = self._agent_of.get(parent.span_id) if parent is not None and self._agent_of else None
        if _stored(span).get(OPERATION) == "invoke_agent":
            totals = _AgentTotals(span)
        if totals is not None:
            with self._lock:
                if len(self._agent_of) >= _MAX_AGENT_SPANS:
                    self._agent_of.clear()
                self._agent_of[span.context.span_id] = totals

    @guarded("GenAI roll-up (agent span end)")
    def _add_to_agent(self, span: ReadableSpan, stored: dict | None) -> None:
        with self._lock:
            totals = self._agent_of.pop(span.context.span_id, None)  # pyright: ignore[reportOptionalMemberAccess] - ended SDK spans have a context
        if totals is None or stored is None or totals.span is span:
            return
        operation = stored.get(OPERATION)
        if operation == "execute_tool":
            totals.tools += 1
            totals.tool_errors += ERROR_TYPE in stored
            values = {AGENT_TOOL_CALLS: totals.tools, AGENT_TOOL_ERRORS: totals.tool_errors}
        elif operation is None or operation in _NOT_CALLS or ROUND_TRIP in stored:
            return
        else:
            totals.calls += 1
            totals.input += int(stored.get(INPUT) or 0)
            totals.output += int(stored.get(OUTPUT) or 0)
            values = {AGENT_CALLS: totals.calls, AGENT_INPUT: totals.input, AGENT_OUTPUT: totals.output}
        if totals.span.is_recording():
            totals.span.set_attributes(values)

    @guarded("GenAI roll-up (span start)")
    def _open_request(self, span: Any) -> None:
        trace_id = span.context.trace_id
        with self._lock:
            self._open.setdefault(trace_id, []).append(_Totals(span))
            while len(self._open) > _MAX_OPEN_TRACES:  # leaked server spans must not grow memory
                self._open.popitem(last=False)

    @guarded("GenAI roll-up (span end)")
    def _add_call(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        operation = attributes.get(OPERATION)
        if operation == TOOL:
            self._add_tool(span, attributes)
            return
        if operation is None or operation in _NOT_CALLS or ROUND_TRIP in attributes:
            return
        with self._lock:
            totals = self._innermost(span)
            if totals is None:
                return
            totals.calls += 1
            totals.input += int(attributes.get(INPUT) or 0)  # pyright: ignore[reportArgumentType] - our own int attribute
            totals.output += int(attributes.get(OUTPUT) or 0)  # pyright: ignore[reportArgumentType] - our own int attribute
            cost = attributes.get(COST)
            if cost is not None:
                totals.cost += float(cost)  # pyright: ignore[reportArgumentType] - our own float attribute
                totals.priced = True
            values = {REQUEST_CALLS: totals.calls, REQUEST_INPUT: totals.input, REQUEST_OUTPUT: totals.output}
            if totals.priced:
                values[REQUEST_COST] = round(totals.cost, 12)  # pyright: ignore[reportArgumentType]
            server_span = totals.span
        if server_span.is_recording():
            server_span.set_attributes(values)

    def _innermost(self, span: ReadableSpan) -> _Totals | None:
        """The totals of the innermost open server span of ``span``'s trace (caller holds the lock)."""
        entries = self._open.get(span.context.trace_id)  # pyright: ignore[reportOptionalMemberAccess] - ended SDK spans have a context
        return entries[-1] if entries else None

    def _add_tool(self, span: ReadableSpan, attributes: Any) -> None:
        failed_tool = ERROR_TYPE in attributes or span.status.status_code is StatusCode.ERROR
        with self._lock:
            totals = self._innermost(span)
            if totals is None:
                return
            totals.tools += 1
            totals.tool_errors += failed_tool
            totals.transfers += attributes.get(TOOL_NAME) in TRANSFER_TOOLS
            values = {REQUEST_TOOL_CALLS: totals.tools}
            if totals.tool_errors:
                values[REQUEST_TOOL_ERRORS] = totals.tool_errors
            if totals.transfers:
                values[REQUEST_TRANSFERS] = totals.transfers
            server_span = totals.span
        if server_span.is_recording():
            server_span.set_attributes(values)

    @guarded("GenAI roll-up (span end)")
    def _close(self, span: ReadableSpan) -> None:
        trace_id, span_id = span.context.trace_id, span.context.span_id  # pyright: ignore[reportOptionalMemberAccess] - ended SDK spans have a context
        with self._lock:
            entries = self._open.get(trace_id)
            if not entries:
                return
            entries[:] = [t for t in entries if t.span_id != span_id]
            if not entries:
                del self._open[trace_id]

    def shutdown(self) -> None:
        with self._lock:
            self._open.clear()
            self._agent_of.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
