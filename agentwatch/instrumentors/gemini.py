"""
Google Gemini instrumentation for the `google-genai`_ SDK, following the
OpenTelemetry GenAI semantic conventions.

Every public model call becomes one CLIENT span named
``{gen_ai.operation.name} {gen_ai.request.model}`` and feeds the conventions'
``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``
histograms (with the advised buckets), sync and async:

- ``Models.generate_content`` / ``generate_content_stream`` (``generate_content``),
- ``Models.embed_content`` (``embeddings``),
- ``Models.count_tokens`` (``count_tokens``),
- chats (``Chat.send_message`` and its stream), which call the methods above:
  one span per call, never two.

What it adds over the other Gemini instrumentations:

- **Every round trip counts.** Automatic function calling and automatic
  continuation send several HTTP requests inside one ``generate_content``;
  each becomes a child span (``agentwatch.gen_ai.round_trip`` = 1, 2, ...)
  with its own usage, and the call span carries the *sum* -- what was billed.
- **Thinking tokens are output tokens** (``gen_ai.usage.output_tokens``
  includes them, ``gen_ai.usage.reasoning.output_tokens`` says how many).
- **Cost** (``agentwatch.gen_ai.usage.cost``, USD) from a bundled, dated price
  table (``AGENTWATCH_GENAI_PRICES`` overrides it), and the
  ``agentwatch.gen_ai.client.cost`` counter. The distro sums cost and tokens of
  every call onto the request's server span.
- **Streams end exactly once**: exhausted, broken out of, closed, garbage
  collected or failed mid-stream; time to first chunk is recorded.
- **The API key never leaves the process**: it is removed from every string
  this instrumentor records (exception messages included).
- **Content is off by default**; ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
  (``SPAN_ONLY`` / ``EVENT_ONLY`` / ``SPAN_AND_EVENT``) opts in, scrubbed and size-limited.

The app sees exactly what it would see uninstrumented: the same return value,
the same exception; a failure inside the instrumentation is logged once and
costs only telemetry.

.. _google-genai: https://pypi.org/project/google-genai/

Usage
-----

.. code:: python

    from google import genai
    from agentwatch.instrumentors.gemini import GeminiInstrumentor

    GeminiInstrumentor().instrument()

    client = genai.Client()
    client.models.generate_content(model="gemini-2.5-flash", contents="Hi")  # span + metrics

Under ``opentelemetry-instrument`` it is loaded from the ``gemini`` entry
point; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=gemini`` switches it off.

API
---
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Collection, Iterator
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import get_logger
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import get_meter
from opentelemetry.trace import SpanKind, Status, StatusCode
from wrapt import wrap_function_wrapper

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.distro import guard
from agentwatch.distro._diagnostics import warn_once
from agentwatch.instrumentors import _genai_common as g
from agentwatch.version import __version__

__all__ = ["GeminiInstrumentor"]

_instruments = ("google-genai >= 1.0.0",)
_SCOPE = "agentwatch.instrumentors.gemini"
_MODULE = "google.genai.models"
_TOOLS_MODULE = "google.genai._extra_utils"
_EVENT_NAME = sc.GEN_AI_INFERENCE_DETAILS_EVENT
_WHERE = "Gemini instrumentation"  # how the guard's warning lines name each step
_SKIPPED = "telemetry of that part skipped"

# The call span a private round-trip method belongs to (set around the public call).
_CURRENT: contextvars.ContextVar["_Call | None"] = contextvars.ContextVar("agentwatch_gemini_call", default=None)

_PUBLIC = [
    ("Models.generate_content", "generate", False),
    ("Models.generate_content_stream", "stream", False),
    ("Models.embed_content", "embeddings", False),
    ("Models.count_tokens", "count_tokens", False),
    ("AsyncModels.generate_content", "generate", True),
    ("AsyncModels.generate_content_stream", "stream", True),
    ("AsyncModels.embed_content", "embeddings", True),
    ("AsyncModels.count_tokens", "count_tokens", True),
]
# Automatic function calling: the SDK runs the user's Python functions between round trips.
_TOOLS = [
    ("get_function_response_parts", "tool_calls", False),
    ("get_function_response_parts_async", "tool_calls", True),
    ("invoke_function_from_dict_args", "invoke", False),
    ("invoke_function_from_dict_args_async", "invoke", True),
]
# The function calls (name, id) of the response whose tools are being run, for gen_ai.tool.call.id.
_PENDING_TOOL_CALLS: contextvars.ContextVar["list[tuple[str, str | None]] | None"] = contextvars.ContextVar(
    "agentwatch_gemini_tool_calls", default=None
)
_ROUND_TRIPS = [
    ("Models._generate_content", "hop", False),
    ("Models._generate_content_stream", "hop_stream", False),
    ("AsyncModels._generate_content", "hop", True),
    ("AsyncModels._generate_content_stream", "hop_stream", True),
]
_REQUEST_PARAMS = (
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K),
    ("max_output_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
    ("seed", sc.GEN_AI_REQUEST_SEED),
    ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY),
)
# Gemini finish reasons -> the conventions' output-message finish_reason values.
_FINISH_TO_SEMCONV = {
    "stop": "stop",
    "max_tokens": "length",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "image_safety": "content_filter",
    "malformed_function_call": "error",
}


# --------------------------------------------------------------------------- helpers
def _guard(where: str, function, *args: Any, default: Any = None) -> Any:
    """Run an extraction step through the guard primitive: a failure costs only that telemetry."""
    return guard.run(f"{_WHERE}: {where}", function, *args, default=default, outcome=_SKIPPED)


def _field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK objects, ``obj[name]`` or ``obj[camelName]`` for dicts."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
        head, *rest = name.split("_")
        return obj.get(head + "".join(part.title() for part in rest))
    return getattr(obj, name, None)


def _model_name(model: Any) -> str:
    if not isinstance(model, str):
        return str(model)
    if model.startswith("models/") or "/models/" in model:
        return model.rsplit("/", 1)[-1]
    return model


def _enum_text(value: Any) -> str:
    name = getattr(value, "name", None)
    return (name if isinstance(name, str) else str(value)).lower()


@dataclass
class _Usage:
    input: int | None = None
    output: int | None = None
    cached: int | None = None
    reasoning: int | None = None

    @classmethod
    def of(cls, metadata: Any) -> "_Usage | None":
        if metadata is None:
            return None
        prompt = _field(metadata, "prompt_token_count")
        tool_prompt = _field(metadata, "tool_use_prompt_token_count")
        candidates = _field(metadata, "candidates_token_count")
        thoughts = _field(metadata, "thoughts_token_count")
        cached = _field(metadata, "cached_content_token_count")
        usage = cls()
        if prompt is not None or tool_prompt is not None:
            usage.input = (prompt or 0) + (tool_prompt or 0)
        if candidates is not None or thoughts is not None:
            usage.output = (candidates or 0) + (thoughts or 0)
        usage.cached = cached
        usage.reasoning = thoughts
        return usage

    def add(self, other: "_Usage | None") -> None:
        if other is None:
            return
        for name in ("input", "output", "cached", "reasoning"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, (mine or 0) + theirs)

    def attributes(self) -> dict[str, int]:
        out = {}
        for name, key in (
            ("input", g.INPUT_TOKENS),
            ("output", g.OUTPUT_TOKENS),
            ("cached", g.CACHE_READ_TOKENS),
            ("reasoning", g.REASONING_TOKENS),
        ):
            value = getattr(self, name)
            if value is not None:
                out[key] = int(value)
        return out


def _response_attributes(response: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    response_id = _field(response, "response_id")
    if response_id:
        attrs[g.RESPONSE_ID] = str(response_id)
    model_version = _field(response, "model_version")
    if model_version:
        attrs[g.RESPONSE_MODEL] = _model_name(model_version)
    reasons = []
    calls = []
    for candidate in _field(response, "candidates") or []:
        reason = _field(candidate, "finish_reason")
        if reason is not None:
            reasons.append(_enum_text(reason))
        content = _field(candidate, "content")
        for part in _field(content, "parts") or []:
            call = _field(part, "function_call")
            if call is not None and _field(call, "name"):
                calls.append(str(_field(call, "name")))
    if reasons:
        attrs[g.FINISH_REASONS] = reasons
    if calls:
        attrs[sc.GENAI_RESPONSE_TOOL_CALLS] = calls
    return attrs


def _tool_names(config: Any) -> list[str]:
    names: list[str] = []
    for tool in _field(config, "tools") or []:
        if callable(tool) and not hasattr(tool, "function_declarations"):
            names.append(getattr(tool, "__name__", "function"))
            continue
        for declaration in _field(tool, "function_declarations") or []:
            name = _field(declaration, "name")
            if name:
                names.append(str(name))
    return names


def _afc_enabled(config: Any) -> bool:
    """Whether automatic function calling may send more than one request (Python callables as tools)."""
    tools = _field(config, "tools") or []
    if not any(callable(t) and not hasattr(t, "function_declarations") for t in tools):
        return False
    afc = _field(config, "automatic_function_calling")
    return not bool(_field(afc, "disable"))


def _redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "[REDACTED]")
    return text


# --------------------------------------------------------------------------- content (opt-in)
def _parts(parts: Any, capture: g.CaptureSettings) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts or []:
        if isinstance(part, str):
            out.append({"type": "text", "content": g.scrub_text(part, capture.max_chars)})
            continue
        text = _field(part, "text")
        call = _field(part, "function_call")
        result = _field(part, "function_response")
        blob = _field(part, "inline_data")
        file_data = _field(part, "file_data")
        if text is not None:
            kind = "reasoning" if _field(part, "thought") else "text"
            out.append({"type": kind, "content": g.scrub_text(str(text), capture.max_chars)})
        elif call is not None:
            arguments = _field(call, "args")
            out.append(
                {
                    "type": "tool_call",
                    "id": _field(call, "id"),
                    "name": _field(call, "name"),
                    "arguments": g.scrub_text(json.dumps(arguments, default=str), capture.max_chars),
                }
            )
        elif result is not None:
            response = _field(result, "response")
            out.append(
                {
                    "type": "tool_call_response",
                    "id": _field(result, "id"),
                    "response": g.scrub_text(json.dumps(response, default=str), capture.max_chars),
                }
            )
        elif blob is not None:
            mime = _field(blob, "mime_type")
            out.append({"type": "blob", "mime_type": mime, "modality": str(mime or "").split("/")[0] or None})
        elif file_data is not None:
            out.append({"type": "uri", "uri": _field(file_data, "file_uri"), "mime_type": _field(file_data, "mime_type")})
    return out


def _input_messages(contents: Any, capture: g.CaptureSettings) -> list[dict[str, Any]]:
    from google.genai import _transformers

    messages = []
    for content in _transformers.t_contents(contents) or []:
        role = _field(content, "role") or "user"
        messages.append(
            {"role": "assistant" if role == "model" else role, "parts": _parts(_field(content, "parts"), capture)}
        )
    return messages


def _system_instructions(config: Any, capture: g.CaptureSettings) -> list[dict[str, Any]] | None:
    instruction = _field(config, "system_instruction")
    if instruction is None:
        return None
    from google.genai import _transformers

    content = _transformers.t_content(instruction)
    return _parts(_field(content, "parts"), capture)


def _output_messages(response: Any, capture: g.CaptureSettings) -> list[dict[str, Any]]:
    messages = []
    for candidate in _field(response, "candidates") or []:
        content = _field(candidate, "content")
        parts = _parts(_field(content, "parts"), capture)
        reason = _field(candidate, "finish_reason")
        finish = _FINISH_TO_SEMCONV.get(_enum_text(reason), _enum_text(reason)) if reason is not None else None
        if any(p["type"] == "tool_call" for p in parts):
            finish = "tool_call"
        messages.append({"role": "assistant", "parts": parts, "finish_reason": finish})
    return messages


def _tool_definitions(config: Any) -> list[dict[str, Any]] | None:
    definitions = []
    for tool in _field(config, "tools") or []:
        if callable(tool) and not hasattr(tool, "function_declarations"):
            definitions.append(
                {"type": "function", "name": getattr(tool, "__name__", "function"), "description": (tool.__doc__ or "").strip()}
            )
            continue
        for declaration in _field(tool, "function_declarations") or []:
            definitions.append(
                {"type": "function", "name": _field(declaration, "name"), "description": _field(declaration, "description")}
            )
    return definitions or None


# --------------------------------------------------------------------------- telemetry
class _Telemetry:
    """Tracer, instruments and settings shared by every wrapper of one instrumentor."""

    def __init__(self, tracer_provider=None, meter_provider=None, logger_provider=None):
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        built = sc.create_instruments(meter, sc.GENAI_METRICS)
        self.duration = built[sc.GEN_AI_CLIENT_OPERATION_DURATION]
        self.tokens = built[sc.GEN_AI_CLIENT_TOKEN_USAGE]
        self.ttfc = built[sc.GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK]
        self.tpoc = built[sc.GEN_AI_CLIENT_TIME_PER_OUTPUT_CHUNK]
        self.cost = built[sc.GENAI_COST_METRIC]
        self.tool_duration = built[sc.GEN_AI_EXECUTE_TOOL_DURATION]
        self.choice = g.instrumentation_choice()
        self.logger = get_logger(_SCOPE, __version__, logger_provider=logger_provider)
        self.capture = g.capture_settings()
        self.cost_enabled = g.cost_enabled()
        self.prices = g.PriceTable.load() if self.cost_enabled else g.PriceTable({})
        opt_in = os.environ.get(ev.OTEL_SEMCONV_STABILITY_OPT_IN, "")
        self.emit_gen_ai_system = "gen_ai/dup" in {part.strip() for part in opt_in.split(",")}

    def price_of(self, *models: str | None) -> g.Price | None:
        for model in models:
            price = self.prices.price(model)
            if price is not None:
                return price
        known = next((m for m in models if m), None)
        if known and self.cost_enabled:
            warn_once(f"genai-price:{known}", f"no price for GenAI model {known!r}: no cost recorded", level=logging.DEBUG)
        return None


@dataclass
class _Hop:
    start_ns: int
    end_ns: int = 0
    usage: _Usage | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    span: Any = None
    token: Any = None


class _Call:
    """One public SDK call: its span, timings, round trips and (for streams) chunks."""

    def __init__(self, tel: _Telemetry, instance: Any, operation: str, kwargs: dict, stream: bool = False):
        self.tel = tel
        self.instance = instance
        self.operation = operation
        self.stream = stream
        self.started = time.perf_counter()
        self.ended = False
        self.hops: list[_Hop] = []
        self.live_hops = False
        self.api_key: str | None = None
        self.config = kwargs.get("config")
        self.contents = kwargs.get("contents")
        self.model = _model_name(kwargs.get("model"))
        # stream state
        self.first_chunk: float | None = None
        self.last_chunk: float | None = None
        self.last_response: Any = None
        self.stream_reasons: list[str] = []
        self.stream_calls: list[str] = []
        self.stream_text: list[str] = []
        self.stream_chars = 0  # running length of stream_text
        self.stream_usage: _Usage | None = None
        self.stream_outcome = "completed"
        self.embedding_usage: _Usage | None = None  # embeddings: from the response's token statistics

        self.base = self._base_attributes()
        # metric attributes shared by every record of this call (bounded: no deprecated duplicate)
        self.metric_base = {k: v for k, v in self.base.items() if k != g.SYSTEM_DEPRECATED}
        attributes = dict(self.base)
        attributes.update(_guard("request attributes", self._request_attributes, default={}) or {})
        self.span = tel.tracer.start_span(f"{operation} {self.model}", kind=SpanKind.CLIENT, attributes=attributes)
        self.ctx = trace.set_span_in_context(self.span)
        if operation == "generate_content" and not stream:
            self.live_hops = bool(_guard("tool inspection", _afc_enabled, self.config, default=False))
        if tel.capture.enabled and operation == "generate_content":
            self.inputs = _guard("content capture (input)", self._capture_inputs, default={}) or {}
        else:
            self.inputs = {}

    # ---- start
    def _base_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {g.OPERATION: self.operation, g.REQUEST_MODEL: self.model}
        api = getattr(self.instance, "_api_client", None)
        vertex = bool(getattr(api, "vertexai", False))
        attrs[g.PROVIDER] = "gcp.vertex_ai" if vertex else "gcp.gemini"
        if self.tel.emit_gen_ai_system:
            attrs[g.SYSTEM_DEPRECATED] = attrs[g.PROVIDER]
        self.api_key = getattr(api, "api_key", None) if api is not None else None
        try:
            base_url = api._http_options.base_url  # noqa: SLF001 - the effective base URL
            parts = urlsplit(base_url)
            if parts.hostname:
                attrs[g.SERVER_ADDRESS] = parts.hostname
                attrs[g.SERVER_PORT] = parts.port or (443 if parts.scheme == "https" else 80)
        except Exception:  # noqa: BLE001 - no base URL known: attributes left out
            pass
        return attrs

    def _request_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        config = self.config
        if self.stream:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if config is None:
            return attrs
        for name, key in _REQUEST_PARAMS:
            value = _field(config, name)
            if value is not None:
                attrs[key] = value
        stops = _field(config, "stop_sequences")
        if stops:
            attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]
        count = _field(config, "candidate_count")
        if count is not None and count != 1:
            attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = count
        mime = _field(config, "response_mime_type")
        if mime:
            attrs[sc.GEN_AI_OUTPUT_TYPE] = "json" if "json" in str(mime) else "text"
        dimensions = _field(config, "output_dimensionality")
        if dimensions is not None and self.operation == "embeddings":
            attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        tools = _tool_names(config)
        if tools:
            attrs[sc.GENAI_REQUEST_TOOLS] = tools
        return attrs

    def _capture_inputs(self) -> dict[str, Any]:
        capture = self.tel.capture
        out: dict[str, Any] = {sc.GEN_AI_INPUT_MESSAGES: _input_messages(self.contents, capture)}
        system = _system_instructions(self.config, capture)
        if system:
            out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = system
        tools = _tool_definitions(self.config)
        if tools:
            out[sc.GEN_AI_TOOL_DEFINITIONS] = tools
        if capture.on_span:
            self.span.set_attributes({k: json.dumps(v, ensure_ascii=False, default=str) for k, v in out.items()})
        return out

    # ---- context
    def attach(self) -> tuple[Any, Any]:
        return otel_context.attach(self.ctx), _CURRENT.set(self)

    @staticmethod
    def detach(tokens: tuple[Any, Any]) -> None:
        otel_token, call_token = tokens
        try:
            _CURRENT.reset(call_token)
        except ValueError:  # reset from another context (a generator resumed elsewhere)
            _CURRENT.set(None)
        otel_context.detach(otel_token)

    # ---- round trips
    def hop_start(self) -> _Hop:
        hop = _Hop(time.time_ns())
        self.hops.append(hop)
        if self.live_hops:
            hop.span = self.tel.tracer.start_span(
                self.span.name,
                context=self.ctx,
                kind=SpanKind.CLIENT,
                attributes={**self.base, g.ROUND_TRIP: len(self.hops)},
            )
            hop.token = otel_context.attach(trace.set_span_in_context(hop.span))
        return hop

    def hop_end(self, hop: _Hop, response: Any, error: BaseException | None) -> None:
        hop.end_ns = time.time_ns()
        if hop.token is not None:
            otel_context.detach(hop.token)
            hop.token = None
        hop.error = error
        if response is not None:
            hop.usage = _Usage.of(_field(response, "usage_metadata"))
            hop.attributes = _response_attributes(response)
        if hop.span is not None:
            self._finish_hop_span(hop, hop.span)

    def observe_hop_chunk(self, hop: _Hop, chunk: Any) -> None:
        usage = _Usage.of(_field(chunk, "usage_metadata"))
        if usage is not None:
            hop.usage = usage  # cumulative within a round trip: the last one wins
        attrs = _response_attributes(chunk)
        reasons = attrs.pop(g.FINISH_REASONS, None)
        hop.attributes.update(attrs)
        if reasons:
            hop.attributes[g.FINISH_REASONS] = reasons

    def _finish_hop_span(self, hop: _Hop, span: Any, end_ns: int | None = None) -> None:
        attrs = dict(hop.attributes)
        if hop.usage is not None:
            attrs.update(hop.usage.attributes())
            cost = self._cost(hop.usage, attrs.get(g.RESPONSE_MODEL))
            if cost is not None:
                attrs[g.COST] = cost
        span.set_attributes(attrs)
        if hop.error is not None:
            self._mark_error(span, hop.error)
        span.end(end_time=end_ns)

    def _replay_hops(self) -> None:
        """More than one round trip without live child spans (streams, continuations): add them now."""
        for index, hop in enumerate(self.hops, start=1):
            if hop.span is not None:
                continue
            span = self.tel.tracer.start_span(
                self.span.name,
                context=self.ctx,
                kind=SpanKind.CLIENT,
                attributes={**self.base, g.ROUND_TRIP: index},
                start_time=hop.start_ns,
            )
            self._finish_hop_span(hop, span, end_ns=hop.end_ns or time.time_ns())

    # ---- end
    def _cost(self, usage: _Usage, response_model: str | None) -> float | None:
        if not self.tel.cost_enabled or usage.input is None and usage.output is None:
            return None
        price = self.tel.price_of(response_model, self.model)
        if price is None:
            return None
        return g.call_cost(price, usage.input or 0, usage.output or 0, usage.cached or 0)

    def _mark_error(self, span: Any, error: BaseException) -> None:
        code = getattr(error, "code", None)
        error_type = str(code) if isinstance(code, int) else type(error).__qualname__
        status = getattr(error, "status", None)
        span.set_attribute(g.ERROR_TYPE, error_type)
        description = f"{code} {status}" if isinstance(code, int) else type(error).__qualname__
        span.set_status(Status(StatusCode.ERROR, _redact(description, self.api_key)))
        message = _redact(str(error), self.api_key)
        stack = _redact("".join(traceback.format_exception(type(error), error, error.__traceback__)), self.api_key)
        span.add_event(
            sc.EXCEPTION_EVENT,
            {
                sc.EXCEPTION_TYPE: f"{type(error).__module__}.{type(error).__qualname__}",
                sc.EXCEPTION_MESSAGE: message,
                sc.EXCEPTION_STACKTRACE: stack,
            },
        )

    def finish(self, response: Any = None, error: BaseException | None = None) -> None:
        """End the call span and record the metrics -- exactly once."""
        if self.ended:
            return
        self.ended = True
        try:
            guard.run(f"{_WHERE}: recording a call", self._finish, response, error, outcome="telemetry of that call skipped")
        finally:
            if self.span.is_recording():
                self.span.end()

    def _finish(self, response: Any, error: BaseException | None) -> None:
        duration = time.perf_counter() - self.started
        attrs: dict[str, Any] = {}
        usage: _Usage | None = None
        if self.stream:
            response = self.last_response
            attrs.update(_guard("response attributes", _response_attributes, response, default={}) or {})
            if self.stream_reasons:
                attrs[g.FINISH_REASONS] = self.stream_reasons
            if self.stream_calls:
                attrs[sc.GENAI_RESPONSE_TOOL_CALLS] = self.stream_calls
            if self.first_chunk is not None:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk - self.started
            attrs[sc.GENAI_STREAM_OUTCOME] = self.stream_outcome
        elif response is not None:
            if self.operation == "generate_content":
                attrs.update(_guard("response attributes", _response_attributes, response, default={}) or {})
            elif self.operation == "embeddings":
                attrs.update(_guard("embedding attributes", self._embedding_attributes, response, default={}) or {})
            elif self.operation == "count_tokens":
                total = _field(response, "total_tokens")
                if total is not None:
                    attrs[sc.GENAI_COUNT_TOKENS_TOTAL] = int(total)
        if self.operation == "generate_content":
            usage = self._summed_usage(response)
        elif self.operation == "embeddings":
            usage = self.embedding_usage
        if usage is not None:
            attrs.update(usage.attributes())
            cost = self._cost(usage, attrs.get(g.RESPONSE_MODEL))
            if cost is not None:
                attrs[g.COST] = cost
        if len(self.hops) > 1:
            attrs[g.ROUND_TRIPS] = len(self.hops)
            _guard("round-trip spans", self._replay_hops)
        self.span.set_attributes(attrs)
        if error is not None:
            self._mark_error(self.span, error)
        if self.tel.capture.enabled and self.operation == "generate_content" and error is None:
            _guard("content capture (output)", self._capture_outputs, response)
        # metrics: bounded attributes only
        metric_attrs = dict(self.metric_base)
        if g.RESPONSE_MODEL in attrs:
            metric_attrs[g.RESPONSE_MODEL] = attrs[g.RESPONSE_MODEL]
        if error is not None:
            code = getattr(error, "code", None)
            metric_attrs[g.ERROR_TYPE] = str(code) if isinstance(code, int) else type(error).__qualname__
        self.tel.duration.record(duration, metric_attrs)
        if usage is not None and error is None:
            if usage.input is not None:
                self.tel.tokens.record(usage.input, {**metric_attrs, g.TOKEN_TYPE: "input"})
            if usage.output is not None:
                self.tel.tokens.record(usage.output, {**metric_attrs, g.TOKEN_TYPE: "output"})
        if g.COST in attrs:
            self.tel.cost.add(attrs[g.COST], metric_attrs)
        if self.first_chunk is not None:
            self.tel.ttfc.record(self.first_chunk - self.started, metric_attrs)

    def _summed_usage(self, response: Any) -> _Usage | None:
        usages = [hop.usage for hop in self.hops if hop.usage is not None]
        if usages:
            total = _Usage()
            for usage in usages:
                total.add(usage)
            return total
        if self.stream:
            return self.stream_usage
        return _Usage.of(_field(response, "usage_metadata")) if response is not None else None

    def _embedding_attributes(self, response: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        embeddings = _field(response, "embeddings") or []
        if embeddings:
            values = _field(embeddings[0], "values") or []
            if values:
                attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = len(values)
            tokens = [_field(_field(e, "statistics"), "token_count") for e in embeddings]
            if any(t is not None for t in tokens):
                self.embedding_usage = _Usage(input=int(sum(t or 0 for t in tokens)))
        metadata = _field(response, "usage_metadata")
        if metadata is not None and self.embedding_usage is None:
            self.embedding_usage = _Usage.of(metadata)
        return attrs

    def _capture_outputs(self, response: Any) -> None:
        capture = self.tel.capture
        if self.stream:
            text = g.scrub_text("".join(self.stream_text), capture.max_chars)
            finish = self.stream_reasons[-1] if self.stream_reasons else None
            outputs = [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": text}] if text else [],
                    "finish_reason": _FINISH_TO_SEMCONV.get(finish, finish) if finish else None,
                }
            ]
        else:
            outputs = _output_messages(response, capture)
        if capture.on_span:
            self.span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps(outputs, ensure_ascii=False, default=str))
        if capture.on_event:
            attributes = dict(self.span.attributes or {}) if hasattr(self.span, "attributes") else dict(self.base)
            for key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_TOOL_DEFINITIONS):
                attributes.pop(key, None)
            attributes.update(self.inputs)
            attributes[sc.GEN_AI_OUTPUT_MESSAGES] = outputs
            self.tel.logger.emit(event_name=_EVENT_NAME, attributes=attributes, context=self.ctx)

    # ---- stream chunks
    def observe_chunk(self, chunk: Any) -> None:
        now = time.perf_counter()
        if self.first_chunk is None:
            self.first_chunk = now
        elif self.last_chunk is not None:
            self.tel.tpoc.record(now - self.last_chunk, self.metric_base)
        self.last_chunk = now
        self.last_response = chunk
        usage = _Usage.of(_field(chunk, "usage_metadata"))
        if usage is not None:
            self.stream_usage = usage
        for candidate in _field(chunk, "candidates") or []:
            reason = _field(candidate, "finish_reason")
            if reason is not None:
                self.stream_reasons.append(_enum_text(reason))
            for part in _field(_field(candidate, "content"), "parts") or []:
                call = _field(part, "function_call")
                if call is not None and _field(call, "name"):
                    self.stream_calls.append(str(_field(call, "name")))
                text = _field(part, "text")
                if self.tel.capture.enabled and text and not _field(part, "thought"):
                    if self.stream_chars <= self.tel.capture.max_chars:
                        text = str(text)
                        self.stream_text.append(text)
                        self.stream_chars += len(text)


# --------------------------------------------------------------------------- the official instrumentation
_OFFICIAL_PREFIX = g.OFFICIAL_MODULE + "."
_owner_cache: dict[tuple[Any, str], tuple[Any, bool]] = {}


def _official_wraps(owner: Any, name: str) -> bool:
    """Whether the official opentelemetry-instrumentation-google-genai wraps ``owner.name`` (at any depth).

    Answered from the wrapper chain itself, so it holds however the official one got there
    (``opentelemetry-instrument``, or the app calling ``GoogleGenAiSdkInstrumentor().instrument()``)
    and in either wrapping order. Cached per attribute object: one dict lookup per call.
    """
    current = vars(owner).get(name)
    cached = _owner_cache.get((owner, name))
    if cached is not None and cached[0] is current:
        return cached[1]
    found, node = False, current
    for _ in range(32):  # wrapt FunctionWrappers (and functools.wraps layers) down to the SDK's function
        wrapper = getattr(node, "_self_wrapper", None)
        module = str(getattr(wrapper, "__module__", "") or "")
        if module == g.OFFICIAL_MODULE or module.startswith(_OFFICIAL_PREFIX):
            found = True
            break
        node = getattr(node, "__wrapped__", None)
        if node is None:
            break
    _owner_cache[(owner, name)] = (current, found)
    return found


def _step_aside(tel: _Telemetry, owner: Any, name: str) -> bool:
    """True when the official instrumentation records this method: agentwatch then records nothing for it."""
    if not _official_wraps(owner, name):
        return False
    var = ev.AGENTWATCH_GENAI_INSTRUMENTATION
    if tel.choice == g.OFFICIAL:
        if not g.choice_announced():
            warn_once(
                "genai:step-aside",
                f"Gemini: {g.OFFICIAL_DIST} is active ({var}=official): agentwatch's Gemini instrumentor steps aside "
                "for the methods it wraps, so each call gets one span",
                level=logging.INFO,
            )
    else:
        warn_once(
            "genai:step-aside",
            f"Gemini: {g.OFFICIAL_DIST} was instrumented outside agentwatch's loader (by the application?) and wraps "
            f"{getattr(owner, '__name__', owner)}.{name}: agentwatch's Gemini instrumentor steps aside for the methods "
            "it wraps so each call gets one span; remove that instrument() call to get agentwatch's spans (usage of "
            "every round trip, cost, per-request roll-up)",
        )
    return True


def _official_generates() -> bool:
    import google.genai.models as models

    return _official_wraps(models.Models, "generate_content") or _official_wraps(models.AsyncModels, "generate_content")


# --------------------------------------------------------------------------- execute_tool (automatic function calling)
def _function_calls(response: Any) -> list[tuple[str, str | None]]:
    """(name, id) of each function call in the first candidate (the one the SDK runs tools for)."""
    candidates = _field(response, "candidates") or []
    if not candidates:
        return []
    calls = []
    for part in _field(_field(candidates[0], "content"), "parts") or []:
        call = _field(part, "function_call")
        if call is not None and _field(call, "name"):
            call_id = _field(call, "id")
            calls.append((str(_field(call, "name")), str(call_id) if call_id else None))
    return calls


def _json_text(value: Any, capture: g.CaptureSettings) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", exclude_none=True)
    return g.scrub_text(json.dumps(value, ensure_ascii=False, default=str), capture.max_chars)


class _ToolRun:
    """One run of a user function by the SDK's automatic function calling: an ``execute_tool`` INTERNAL span."""

    def __init__(self, tel: _Telemetry, arguments: Any, function: Any):
        self.tel = tel
        self.name = str(getattr(function, "__name__", None) or type(function).__name__)
        self.started = time.perf_counter()
        attrs: dict[str, Any] = {g.OPERATION: "execute_tool", g.TOOL_NAME: self.name, g.TOOL_TYPE: "function"}
        pending = _PENDING_TOOL_CALLS.get()
        if pending:
            for index, (name, call_id) in enumerate(pending):
                if name == self.name:
                    del pending[index]
                    if call_id:
                        attrs[g.TOOL_CALL_ID] = call_id
                    break
        doc = inspect.getdoc(function) if callable(function) else None
        if doc:
            attrs[g.TOOL_DESCRIPTION] = doc if len(doc) <= 1024 else doc[:1024] + "..."
        if tel.capture.on_span and arguments is not None:
            attrs[g.TOOL_CALL_ARGUMENTS] = _json_text(arguments, tel.capture)
        self.span = tel.tracer.start_span(f"execute_tool {self.name}", kind=SpanKind.INTERNAL, attributes=attrs)
        self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        """End the tool span and record its duration."""
        try:
            guard.run(f"{_WHERE}: recording a tool run", self._finish, result, error, outcome="telemetry of that run skipped")
        finally:
            self.span.end()

    def _finish(self, result: Any, error: BaseException | None) -> None:
        otel_context.detach(self.token)
        metric_attrs = {g.OPERATION: "execute_tool", g.TOOL_NAME: self.name, g.TOOL_TYPE: "function"}
        if error is not None:
            # The SDK wraps the function's exception in FunctionInvocationError (whose message
            # repeats the arguments) and hands the model an error result: report the original.
            original = error.__context__ if type(error).__name__ == "FunctionInvocationError" else None
            cause = original if isinstance(original, BaseException) else error
            metric_attrs[g.ERROR_TYPE] = type(cause).__qualname__
            self.span.set_attribute(g.ERROR_TYPE, type(cause).__qualname__)
            self.span.set_status(Status(StatusCode.ERROR, type(cause).__qualname__))
            self.span.record_exception(cause)
        elif self.tel.capture.on_span:
            self.span.set_attribute(g.TOOL_CALL_RESULT, _json_text(result, self.tel.capture))
        self.tel.tool_duration.record(time.perf_counter() - self.started, metric_attrs)


def _tool_run(tel: _Telemetry, args: tuple, kwargs: dict) -> _ToolRun | None:
    if _official_generates():
        return None  # the official instrumentation records its own execute_tool spans
    arguments = args[0] if args else kwargs.get("args")
    function = args[1] if len(args) > 1 else kwargs.get("function_to_invoke")
    return _ToolRun(tel, arguments, function)


def _invoke_sync(tel: _Telemetry):
    def wrapper(wrapped, instance, args, kwargs):
        run = _guard("tool span start", _tool_run, tel, args, kwargs)
        if run is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            run.finish(error=error)
            raise
        run.finish(result)
        return result

    return wrapper


def _invoke_async(tel: _Telemetry):
    async def wrapper(wrapped, instance, args, kwargs):
        run = _guard("tool span start", _tool_run, tel, args, kwargs)
        if run is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            run.finish(error=error)
            raise
        run.finish(result)
        return result

    return wrapper


def _pending_calls(args: tuple, kwargs: dict) -> list[tuple[str, str | None]] | None:
    return _function_calls(args[0] if args else kwargs.get("response"))


def _tool_calls_sync(_tel: _Telemetry):
    def wrapper(wrapped, instance, args, kwargs):
        token = _PENDING_TOOL_CALLS.set(_guard("tool call ids", _pending_calls, args, kwargs))
        try:
            return wrapped(*args, **kwargs)
        finally:
            _PENDING_TOOL_CALLS.reset(token)

    return wrapper


def _tool_calls_async(_tel: _Telemetry):
    async def wrapper(wrapped, instance, args, kwargs):
        token = _PENDING_TOOL_CALLS.set(_guard("tool call ids", _pending_calls, args, kwargs))
        try:
            return await wrapped(*args, **kwargs)
        finally:
            _PENDING_TOOL_CALLS.reset(token)

    return wrapper


# --------------------------------------------------------------------------- stream proxies
class _SyncStream:
    """Iterator over the SDK's stream that ends the call span exactly once."""

    def __init__(self, inner: Iterator[Any], call: _Call):
        self._inner = inner
        self._call = call

    def __iter__(self) -> "_SyncStream":
        return self

    def __next__(self) -> Any:
        call = self._call
        tokens = _attach(call)
        try:
            chunk = next(self._inner)
        except StopIteration:
            call.finish()
            raise
        except BaseException as error:
            call.stream_outcome = "error"
            call.finish(error=error)
            raise
        finally:
            _detach(tokens)
        _guard("stream chunk", call.observe_chunk, chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            if not self._call.ended:
                self._call.stream_outcome = "closed_early"
                self._call.finish()

    def __enter__(self) -> "_SyncStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None and not call.ended:
            call.stream_outcome = "abandoned"
            call.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AsyncStream:
    """Async iterator over the SDK's stream that ends the call span exactly once."""

    def __init__(self, inner: Any, call: _Call):
        self._inner = inner
        self._call = call

    def __aiter__(self) -> "_AsyncStream":
        return self

    async def __anext__(self) -> Any:
        call = self._call
        tokens = _attach(call)
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            call.finish()
            raise
        except BaseException as error:
            call.stream_outcome = "error"
            call.finish(error=error)
            raise
        finally:
            _detach(tokens)
        _guard("stream chunk", call.observe_chunk, chunk)
        return chunk

    async def aclose(self) -> None:
        try:
            close = getattr(self._inner, "aclose", None)
            if close is not None:
                await close()
        finally:
            if not self._call.ended:
                self._call.stream_outcome = "closed_early"
                self._call.finish()

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None and not call.ended:
            call.stream_outcome = "abandoned"
            call.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# --------------------------------------------------------------------------- wrappers
_OPERATIONS = {"generate": "generate_content", "stream": "generate_content", "embeddings": "embeddings",
               "count_tokens": "count_tokens"}


def _attach(call: _Call) -> tuple[Any, Any] | None:
    """Make the call's span current; None (the call then runs in the caller's context) if that failed."""
    return _guard("context attach", call.attach)


def _detach(tokens: tuple[Any, Any] | None) -> None:
    if tokens is not None:
        _guard("context detach", _Call.detach, tokens)


def _start(tel: _Telemetry, kind: str, instance: Any, kwargs: dict) -> _Call | None:
    return _guard("span start", _Call, tel, instance, _OPERATIONS[kind], kwargs, kind == "stream")


def _public_sync(tel: _Telemetry, kind: str, owner: Any, name: str):
    def wrapper(wrapped, instance, args, kwargs):
        if _guard("step-aside check", _step_aside, tel, owner, name, default=True):
            return wrapped(*args, **kwargs)
        call = _start(tel, kind, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        tokens = _attach(call)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            call.finish(error=error)
            raise
        finally:
            _detach(tokens)
        if kind == "stream":
            return _SyncStream(result, call)
        call.finish(result)
        return result

    return wrapper


def _public_async(tel: _Telemetry, kind: str, owner: Any, name: str):
    async def wrapper(wrapped, instance, args, kwargs):
        if _guard("step-aside check", _step_aside, tel, owner, name, default=True):
            return await wrapped(*args, **kwargs)
        call = _start(tel, kind, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        tokens = _attach(call)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            call.finish(error=error)
            raise
        finally:
            _detach(tokens)
        if kind == "stream":
            return _AsyncStream(result, call)
        call.finish(result)
        return result

    return wrapper


def _owning_call(instance: Any) -> _Call | None:
    call = _CURRENT.get()
    return call if call is not None and call.instance is instance and not call.ended else None


def _hop_sync(_tel: _Telemetry, kind: str):
    def wrapper(wrapped, instance, args, kwargs):
        call = _owning_call(instance)
        if call is None:
            return wrapped(*args, **kwargs)
        hop = _guard("round-trip start", call.hop_start)
        if hop is None:
            return wrapped(*args, **kwargs)
        if kind == "hop_stream":
            return _hop_stream_sync(wrapped(*args, **kwargs), call, hop)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _guard("round-trip end", call.hop_end, hop, None, error)
            raise
        _guard("round-trip end", call.hop_end, hop, result, None)
        return result

    return wrapper


def _hop_stream_sync(inner: Iterator[Any], call: _Call, hop: _Hop):
    error = None
    try:
        for chunk in inner:
            _guard("round-trip chunk", call.observe_hop_chunk, hop, chunk)
            yield chunk
    except BaseException as failure:
        error = failure
        raise
    finally:
        _guard("round-trip end", call.hop_end, hop, None, error)


async def _hop_stream_async(inner: Any, call: _Call, hop: _Hop):
    error = None
    try:
        async for chunk in inner:
            _guard("round-trip chunk", call.observe_hop_chunk, hop, chunk)
            yield chunk
    except BaseException as failure:
        error = failure
        raise
    finally:
        _guard("round-trip end", call.hop_end, hop, None, error)


def _hop_async(_tel: _Telemetry, kind: str):
    async def wrapper(wrapped, instance, args, kwargs):
        call = _owning_call(instance)
        if call is None:
            return await wrapped(*args, **kwargs)
        hop = _guard("round-trip start", call.hop_start)
        if hop is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            _guard("round-trip end", call.hop_end, hop, None, error)
            raise
        if kind == "hop_stream":
            return _hop_stream_async(result, call, hop)
        _guard("round-trip end", call.hop_end, hop, result, None)
        return result

    return wrapper


class GeminiInstrumentor(BaseInstrumentor):
    """OpenTelemetry GenAI instrumentation of the google-genai SDK (``google.genai``)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        """Wrap the public model methods (spans, metrics) and the per-request ones (round trips)."""
        import google.genai.models as models

        tel = _Telemetry(kwargs.get("tracer_provider"), kwargs.get("meter_provider"), kwargs.get("logger_provider"))
        self._wrapped: list[tuple[Any, str]] = []
        for target, kind, is_async in _PUBLIC + _ROUND_TRIPS:
            class_name, method = target.split(".")
            cls = getattr(models, class_name, None)
            if cls is None or not hasattr(cls, method):
                warn_once(f"gemini:missing:{target}", f"google-genai has no {target}; it is not instrumented")
                continue
            if kind.startswith("hop"):
                wrapper = (_hop_async if is_async else _hop_sync)(tel, kind)
            else:
                wrapper = (_public_async if is_async else _public_sync)(tel, kind, cls, method)
            wrap_function_wrapper(_MODULE, target, wrapper)
            self._wrapped.append((cls, method))
        try:
            import google.genai._extra_utils as tools
        except ImportError:
            tools = None
        for function, kind, is_async in _TOOLS:
            if tools is None or not callable(getattr(tools, function, None)):
                warn_once(f"gemini:missing:{function}", f"google-genai has no {function}; tool runs get no spans")
                continue
            if kind == "invoke":
                wrapper = (_invoke_async if is_async else _invoke_sync)(tel)
            else:
                wrapper = (_tool_calls_async if is_async else _tool_calls_sync)(tel)
            wrap_function_wrapper(_TOOLS_MODULE, function, wrapper)
            self._wrapped.append((tools, function))

    def _uninstrument(self, **kwargs: Any) -> None:
        """Restore every wrapped method and function."""
        for owner, name in getattr(self, "_wrapped", []):
            unwrap(owner, name)
        self._wrapped = []
        _owner_cache.clear()
