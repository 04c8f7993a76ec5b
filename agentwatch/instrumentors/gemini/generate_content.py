"""``generate_content`` and ``generate_content_stream`` (chats call them too): one span per call.

What this operation adds to the shared :class:`~agentwatch.instrumentors.gemini.call.Call`:

- **round trips**: automatic function calling and automatic continuation send several HTTP requests
  inside one call. Each becomes a child span (``agentwatch.gen_ai.round_trip`` = 1, 2, ...) with its own
  usage and cost -- live when Python functions are offered as tools, replayed at the end otherwise
  (streams, continuations) -- and the call span carries the *sum*, what was billed;
- **streams**: chunks are observed as the app reads them (time to first chunk, time per chunk, finish
  reasons, the usage of the last chunk) through the shared wrapper of :mod:`.streams`;
- **content** (opt-in): input messages at the start, output messages at the end (:mod:`.content`);
- **safety blocks**: guardrail events for blocked prompts and candidates, from the response or any chunk
  (:mod:`.guardrails`).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.instrumentors._agents import tool_links
from agentwatch.instrumentors.gemini import content, extract, guardrails, tools
from agentwatch.instrumentors.gemini.call import Call, mark_error
from agentwatch.instrumentors.gemini.extract import Usage, enum_text, field
from agentwatch.instrumentors.gemini.round_trips import Hop
from agentwatch.instrumentors.gemini.telemetry import SKIPPED, WHERE, Telemetry


class GenerateContentCall(Call):
    """One ``generate_content`` call (or stream): its span, round trips and, for streams, chunks."""

    operation = "generate_content"
    methods = (
        ("Models.generate_content", False),
        ("Models.generate_content_stream", True),
        ("AsyncModels.generate_content", False),
        ("AsyncModels.generate_content_stream", True),
    )

    def __init__(self, tel: Telemetry, instance: Any, kwargs: dict[str, Any], stream: bool = False):
        self.hops: list[Hop] = []
        self.live_hops = False
        # stream state
        self.first_chunk: float | None = None
        self.last_chunk: float | None = None
        self.last_response: Any = None
        self.stream_reasons: list[str] = []
        self.stream_calls: list[str] = []
        self.stream_text: list[str] = []
        self.stream_chars = 0  # running length of stream_text
        self.stream_usage: Usage | None = None
        self.stream_outcome = "completed"
        self.guardrails_seen: set[tuple[str, int]] = set()  # safety blocks reported (guardrails.observe)
        super().__init__(tel, instance, kwargs, stream)
        if not stream:
            live = guard.run(f"{WHERE}: tool inspection", tools.afc_enabled, self.config, default=False, outcome=SKIPPED)
            self.live_hops = bool(live)
        # tool results this call sends back: links to the app's tool spans that produced them
        guard.run(f"{WHERE}: tool result links", tool_links.link_results, self.span, self.contents, outcome=SKIPPED)
        self.inputs: dict[str, Any] = {}
        if tel.capture.enabled:
            self.inputs = guard.run(
                f"{WHERE}: content capture (input)", content.capture_inputs, self.span, tel.capture, self.contents,
                self.config, default={}, outcome=SKIPPED,
            ) or {}

    # ---- round trips
    def hop_start(self) -> Hop:
        """A round trip begins (a child span now when they are recorded live)."""
        hop = Hop(time.time_ns())
        self.hops.append(hop)
        if self.live_hops:
            hop.span = self.tel.tracer.start_span(
                self.span.name,  # pyright: ignore[reportAttributeAccessIssue] - an SDK span
                context=self.ctx,
                kind=SpanKind.CLIENT,
                attributes={**self.base, sc.GENAI_ROUND_TRIP: len(self.hops)},
            )
            hop.token = otel_context.attach(trace.set_span_in_context(hop.span))
        return hop

    def hop_end(self, hop: Hop, response: Any, error: BaseException | None) -> None:
        """A round trip ended with ``response`` (None for streams: their chunks were observed) or ``error``."""
        hop.end_ns = time.time_ns()
        if hop.token is not None:
            otel_context.detach(hop.token)
            hop.token = None
        hop.error = error
        if response is not None:
            hop.usage = Usage.of(field(response, "usage_metadata"))
            hop.attributes = extract.response_attributes(response)
        if hop.span is not None:
            self._finish_hop_span(hop, hop.span)

    def observe_hop_chunk(self, hop: Hop, chunk: Any) -> None:
        usage = Usage.of(field(chunk, "usage_metadata"))
        if usage is not None:
            hop.usage = usage  # cumulative within a round trip: the last one wins
        attrs = extract.response_attributes(chunk)
        reasons = attrs.pop(sc.GEN_AI_RESPONSE_FINISH_REASONS, None)
        hop.attributes.update(attrs)
        if reasons:
            hop.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons

    def _finish_hop_span(self, hop: Hop, span: Any, end_ns: int | None = None) -> None:
        attrs = dict(hop.attributes)
        if hop.usage is not None:
            attrs.update(hop.usage.attributes())
            cost = self.cost(hop.usage, attrs.get(sc.GEN_AI_RESPONSE_MODEL))
            if cost is not None:
                attrs[sc.GENAI_COST] = cost
        span.set_attributes(attrs)
        if hop.error is not None:
            mark_error(span, hop.error, self.api_key)
        span.end(end_time=end_ns)

    def _replay_hops(self) -> None:
        """More than one round trip without live child spans (streams, continuations): add them now."""
        for index, hop in enumerate(self.hops, start=1):
            if hop.span is not None:
                continue
            span = self.tel.tracer.start_span(
                self.span.name,  # pyright: ignore[reportAttributeAccessIssue] - an SDK span
                context=self.ctx,
                kind=SpanKind.CLIENT,
                attributes={**self.base, sc.GENAI_ROUND_TRIP: index},
                start_time=hop.start_ns,
            )
            self._finish_hop_span(hop, span, end_ns=hop.end_ns or time.time_ns())

    # ---- stream chunks
    def observe_chunk(self, chunk: Any) -> None:
        """A chunk reached the app: timings, finish reasons, function calls, usage, text (content capture)."""
        now = time.perf_counter()
        if self.first_chunk is None:
            self.first_chunk = now
        elif self.last_chunk is not None:
            self.tel.tpoc.record(now - self.last_chunk, self.metric_base)
        self.last_chunk = now
        self.last_response = chunk
        usage = Usage.of(field(chunk, "usage_metadata"))
        if usage is not None:
            self.stream_usage = usage
        for candidate in field(chunk, "candidates") or []:
            reason = field(candidate, "finish_reason")
            if reason is not None:
                self.stream_reasons.append(enum_text(reason))
            for part in field(field(candidate, "content"), "parts") or []:
                call = field(part, "function_call")
                if call is not None and field(call, "name"):
                    self.stream_calls.append(str(field(call, "name")))
                text = field(part, "text")
                if self.tel.capture.enabled and text and not field(part, "thought"):
                    if self.stream_chars <= self.tel.capture.max_chars:
                        text = str(text)
                        self.stream_text.append(text)
                        self.stream_chars += len(text)
        self._guardrails(chunk)  # a safety block can come in any chunk

    def _guardrails(self, response: Any) -> None:
        guard.run(f"{WHERE}: safety blocks", guardrails.observe, self, response, outcome=SKIPPED)

    # ---- end
    def _response_attributes(self, response: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if self.stream:
            attrs.update(self._guarded_response_attributes(self.last_response))
            if self.stream_reasons:
                attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = self.stream_reasons
            if self.stream_calls:
                attrs[sc.GENAI_RESPONSE_TOOL_CALLS] = self.stream_calls
            if self.first_chunk is not None:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk - self.started
            attrs[sc.GENAI_STREAM_OUTCOME] = self.stream_outcome
        elif response is not None:
            attrs.update(self._guarded_response_attributes(response))
            self._guardrails(response)
        requested = self.last_response if self.stream else response
        if requested is not None:  # function calls the app's tool spans will link back to; loops, unknown tools
            guard.run(f"{WHERE}: tool call links", self._tool_signals, requested, outcome=SKIPPED)
        return attrs

    def _tool_signals(self, response: Any) -> None:
        declared = tools.tool_names(self.config)
        for kind, name, count in tool_links.record(self.span, response, declared):
            metric_attrs = {sc.GEN_AI_TOOL_NAME: name, sc.GEN_AI_REQUEST_MODEL: self.base.get(sc.GEN_AI_REQUEST_MODEL, "")}
            if kind == "loop":
                self.span.add_event(sc.GENAI_TOOL_LOOP_EVENT, {sc.GEN_AI_TOOL_NAME: name, sc.GENAI_TOOL_LOOP_COUNT: count})
                self.tel.tool_loops.add(1, metric_attrs)
            else:
                self.span.add_event(sc.GENAI_UNKNOWN_TOOL_EVENT, {sc.GEN_AI_TOOL_NAME: name})
                self.tel.unknown_tools.add(1, metric_attrs)

    @staticmethod
    def _guarded_response_attributes(response: Any) -> dict[str, Any]:
        attrs = guard.run(
            f"{WHERE}: response attributes", extract.response_attributes, response, default={}, outcome=SKIPPED
        )
        return attrs or {}

    def _usage(self, response: Any) -> Usage | None:
        """The sum over the round trips (what was billed); else the stream's last usage, or the response's."""
        usages = [hop.usage for hop in self.hops if hop.usage is not None]
        if usages:
            total = Usage()
            for usage in usages:
                total.add(usage)
            return total
        if self.stream:
            return self.stream_usage
        return Usage.of(field(response, "usage_metadata")) if response is not None else None

    def _end_round_trips(self, attrs: dict[str, Any]) -> None:
        if len(self.hops) > 1:
            attrs[sc.GENAI_ROUND_TRIPS] = len(self.hops)
            guard.run(f"{WHERE}: round-trip spans", self._replay_hops, outcome=SKIPPED)

    def _capture_outputs(self, response: Any) -> None:
        guard.run(f"{WHERE}: content capture (output)", self._record_outputs, response, outcome=SKIPPED)

    def _record_outputs(self, response: Any) -> None:
        capture = self.tel.capture
        if self.stream:
            outputs = content.streamed_output_messages(self.stream_text, self.stream_reasons, capture)
        else:
            outputs = content.output_messages(response, capture)
        content.record_outputs(self.tel, self.span, self.ctx, self.base, self.inputs, outputs)

    def _record_metrics(
        self, duration: float, attrs: dict[str, Any], usage: Usage | None, error: BaseException | None
    ) -> dict[str, Any]:
        metric_attrs = super()._record_metrics(duration, attrs, usage, error)
        if self.first_chunk is not None:
            self.tel.ttfc.record(self.first_chunk - self.started, metric_attrs)
        return metric_attrs
