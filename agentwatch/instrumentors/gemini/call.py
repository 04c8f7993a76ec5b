"""The lifecycle every public model call shares: one CLIENT span, its metrics, ended exactly once.

:class:`Call` starts the span with the attributes known up front (operation, model, provider, server,
request parameters, and what an agent framework handed over: ADK's agent name and ids), makes it
current around the SDK call, and on :meth:`Call.finish` sets what the response said, the usage and its
cost, marks an error, and records the metrics (bounded attributes only). Each operation module subclasses it for what only that operation reads from its response:
``generate_content``, ``embed_content``, ``count_tokens``.
"""

from __future__ import annotations

import contextvars
import time
import traceback
from typing import Any, ClassVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.instrumentors import _genai_common as g
from agentwatch.instrumentors._framework_attributes import framework_attributes
from agentwatch.instrumentors._retry_attempts import Attempts
from agentwatch.instrumentors.gemini import extract, tools
from agentwatch.instrumentors.gemini.extract import Usage, field
from agentwatch.instrumentors.gemini.telemetry import SKIPPED, WHERE, Telemetry

# The call a private round-trip method belongs to (set around the public call).
CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar("agentwatch_gemini_call", default=None)

REQUEST_PARAMS = (
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K),
    ("max_output_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
    ("seed", sc.GEN_AI_REQUEST_SEED),
    ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY),
)


def error_type(error: BaseException) -> str:
    """``error.type``: the HTTP status of an SDK APIError, else the exception's class name."""
    code = getattr(error, "code", None)
    return str(code) if isinstance(code, int) else type(error).__qualname__


def mark_error(span: Any, error: BaseException, secret: str | None) -> None:
    """Error status, ``error.type`` and the exception event on ``span``, with ``secret`` (the API key) removed."""
    code = getattr(error, "code", None)
    status = getattr(error, "status", None)
    span.set_attribute(sc.ERROR_TYPE, error_type(error))
    description = f"{code} {status}" if isinstance(code, int) else type(error).__qualname__
    span.set_status(Status(StatusCode.ERROR, extract.redact(description, secret)))
    message = extract.redact(str(error), secret)
    stack = extract.redact("".join(traceback.format_exception(type(error), error, error.__traceback__)), secret)
    span.add_event(
        sc.EXCEPTION_EVENT,
        {
            sc.EXCEPTION_TYPE: f"{type(error).__module__}.{type(error).__qualname__}",
            sc.EXCEPTION_MESSAGE: message,
            sc.EXCEPTION_STACKTRACE: stack,
        },
    )


class Call:
    """One public SDK call: its span, timings and metrics. Subclassed per operation."""

    operation: ClassVar[str]
    # The google.genai.models methods of this operation: ("Class.method", returns a stream).
    methods: ClassVar[tuple[tuple[str, bool], ...]] = ()
    # The failed attempts of the SDK's retry loop (set by .retries on the first one; most calls have none).
    retries: Attempts | None = None

    def __init__(self, tel: Telemetry, instance: Any, kwargs: dict[str, Any], stream: bool = False):
        self.tel = tel
        self.instance = instance
        self.stream = stream
        self.started = time.perf_counter()
        self.ended = False
        self.api_key: str | None = None
        self.config = kwargs.get("config")
        self.contents = kwargs.get("contents")
        self.model = extract.model_name(kwargs.get("model"))
        self.base = self._base_attributes()
        # metric attributes shared by every record of this call (bounded: no deprecated duplicate)
        self.metric_base = {k: v for k, v in self.base.items() if k != sc.GEN_AI_SYSTEM}
        attributes = dict(self.base)
        requested = guard.run(f"{WHERE}: request attributes", self._request_attributes, default={}, outcome=SKIPPED)
        attributes.update(requested or {})
        framework = framework_attributes()  # ADK's agent name and ids (_framework_attributes.py); ours win
        if framework:
            for key, value in framework.items():
                attributes.setdefault(key, value)
        self.span = tel.tracer.start_span(f"{self.operation} {self.model}", kind=SpanKind.CLIENT, attributes=attributes)
        self.ctx = trace.set_span_in_context(self.span)

    # ---- start
    def _base_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: self.operation, sc.GEN_AI_REQUEST_MODEL: self.model}
        api = getattr(self.instance, "_api_client", None)
        vertex = bool(getattr(api, "vertexai", False))
        attrs[sc.GEN_AI_PROVIDER_NAME] = "gcp.vertex_ai" if vertex else "gcp.gemini"
        if self.tel.emit_gen_ai_system:
            attrs[sc.GEN_AI_SYSTEM] = attrs[sc.GEN_AI_PROVIDER_NAME]
        self.api_key = getattr(api, "api_key", None) if api is not None else None
        try:
            base_url = api._http_options.base_url  # pyright: ignore[reportOptionalMemberAccess] - inside the try: no client, no base URL
            parts = urlsplit(base_url)
            if parts.hostname:
                attrs[sc.SERVER_ADDRESS] = parts.hostname
                attrs[sc.SERVER_PORT] = parts.port or (443 if parts.scheme == "https" else 80)
        except Exception:  # noqa: BLE001, S110 - no base URL known (no client, another SDK layout): attributes left out
            pass
        return attrs

    def _request_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        config = self.config
        if self.stream:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if config is None:
            return attrs
        for name, key in REQUEST_PARAMS:
            value = field(config, name)
            if value is not None:
                attrs[key] = value
        stops = field(config, "stop_sequences")
        if stops:
            attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]
        count = field(config, "candidate_count")
        if count is not None and count != 1:
            attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = count
        mime = field(config, "response_mime_type")
        if mime:
            attrs[sc.GEN_AI_OUTPUT_TYPE] = "json" if "json" in str(mime) else "text"
        names = tools.tool_names(config)
        if names:
            attrs[sc.GENAI_REQUEST_TOOLS] = names
        return attrs

    # ---- context
    def attach(self) -> tuple[Any, Any]:
        """Make this call's span current (and this call the owner of the round trips inside it)."""
        return otel_context.attach(self.ctx), CURRENT.set(self)

    @staticmethod
    def detach(tokens: tuple[Any, Any]) -> None:
        otel_token, call_token = tokens
        try:
            CURRENT.reset(call_token)
        except ValueError:  # reset from another context (a generator resumed elsewhere)
            CURRENT.set(None)
        otel_context.detach(otel_token)

    # ---- end
    def cost(self, usage: Usage, response_model: str | None) -> float | None:
        """USD of ``usage`` at the response model's price (else the requested model's); None when unknown."""
        if not self.tel.cost_enabled or usage.input is None and usage.output is None:
            return None
        price = self.tel.price_of(response_model, self.model)
        if price is None:
            return None
        return g.call_cost(price, usage.input or 0, usage.output or 0, usage.cached or 0)

    def finish(self, response: Any = None, error: BaseException | None = None) -> None:
        """End the call span and record the metrics -- exactly once."""
        if self.ended:
            return
        self.ended = True
        try:
            guard.run(f"{WHERE}: recording a call", self._finish, response, error, outcome="telemetry of that call skipped")
        finally:
            if self.span.is_recording():
                self.span.end()

    def _finish(self, response: Any, error: BaseException | None) -> None:
        duration = time.perf_counter() - self.started
        attrs = self._response_attributes(response)
        usage = self._usage(response)
        if usage is not None:
            attrs.update(usage.attributes())
            cost = self.cost(usage, attrs.get(sc.GEN_AI_RESPONSE_MODEL))
            if cost is not None:
                attrs[sc.GENAI_COST] = cost
        self._end_round_trips(attrs)
        if self.retries is not None and self.retries.retried:
            # requests sent: one per round trip of the call, plus every retry
            attrs[sc.RETRY_ATTEMPTS] = self.retries.retried + int(attrs.get(sc.GENAI_ROUND_TRIPS) or 1)
        self.span.set_attributes(attrs)
        if error is not None:
            mark_error(self.span, error, self.api_key)
        if self.tel.capture.enabled and error is None:
            self._capture_outputs(response)
        self._record_metrics(duration, attrs, usage, error)

    def _record_metrics(
        self, duration: float, attrs: dict[str, Any], usage: Usage | None, error: BaseException | None
    ) -> dict[str, Any]:
        """Duration, token usage and cost of the call (bounded attributes only); returns those attributes."""
        metric_attrs = dict(self.metric_base)
        if sc.GEN_AI_RESPONSE_MODEL in attrs:
            metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = attrs[sc.GEN_AI_RESPONSE_MODEL]
        if error is not None:
            metric_attrs[sc.ERROR_TYPE] = error_type(error)
        self.tel.duration.record(duration, metric_attrs)
        if usage is not None and error is None:
            if usage.input is not None:
                self.tel.tokens.record(usage.input, {**metric_attrs, sc.GEN_AI_TOKEN_TYPE: "input"})
            if usage.output is not None:
                self.tel.tokens.record(usage.output, {**metric_attrs, sc.GEN_AI_TOKEN_TYPE: "output"})
        if sc.GENAI_COST in attrs:
            self.tel.cost.add(attrs[sc.GENAI_COST], metric_attrs)
        return metric_attrs

    # ---- what each operation reads (overridden by the operation modules)
    def _response_attributes(self, response: Any) -> dict[str, Any]:
        """Attributes read from the response (None after a failure)."""
        return {}

    def _usage(self, response: Any) -> Usage | None:
        """The billed usage of the whole call, or None when the operation bills none."""
        return None

    def _end_round_trips(self, attrs: dict[str, Any]) -> None:
        """Add what the call's round trips say (only generate_content makes several)."""

    def _capture_outputs(self, response: Any) -> None:
        """Record the output content (content capture on, no error)."""


def attach(call: Call) -> tuple[Any, Any] | None:
    """Make the call's span current; None (the call then runs in the caller's context) if that failed."""
    return guard.run(f"{WHERE}: context attach", call.attach, outcome=SKIPPED)


def detach(tokens: tuple[Any, Any] | None) -> None:
    if tokens is not None:
        guard.run(f"{WHERE}: context detach", Call.detach, tokens, outcome=SKIPPED)
