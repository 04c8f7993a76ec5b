"""Opt-in content capture (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).

Messages in the GenAI conventions' shape (``gen_ai.input.messages`` / ``gen_ai.output.messages``: a role and
typed parts), system instructions and tool definitions. Every captured text goes through the distro's PII
scrubber and is cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``; blobs are described (mime type), never
copied. ``SPAN_ONLY`` puts them on the call span as JSON, ``EVENT_ONLY`` on a
``gen_ai.client.inference.operation.details`` log event, ``SPAN_AND_EVENT`` on both.
"""

from __future__ import annotations

import json
from typing import Any

from agentwatch import semconv as sc
from agentwatch.distro import scrub
from agentwatch.distro.scrub.values import safe_value
from agentwatch.instrumentors import _genai_common as g
from agentwatch.instrumentors.gemini.extract import enum_text, field
from agentwatch.instrumentors.gemini.telemetry import Telemetry

# Gemini finish reasons -> the conventions' output-message finish_reason values.
FINISH_TO_SEMCONV = {
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
_CONTENT_KEYS = (
    sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_TOOL_DEFINITIONS
)


def parts(items: Any, capture: g.CaptureSettings) -> list[dict[str, Any]]:
    """The conventions' typed parts of a content's ``parts``."""
    out: list[dict[str, Any]] = []
    for part in items or []:
        if isinstance(part, str):
            out.append({"type": "text", "content": g.scrub_text(part, capture.max_chars)})
            continue
        text = field(part, "text")
        call = field(part, "function_call")
        result = field(part, "function_response")
        blob = field(part, "inline_data")
        file_data = field(part, "file_data")
        if text is not None:
            kind = "reasoning" if field(part, "thought") else "text"
            out.append({"type": kind, "content": g.scrub_text(str(text), capture.max_chars)})
        elif call is not None:
            arguments = field(call, "args")
            out.append(
                {
                    "type": "tool_call",
                    "id": field(call, "id"),
                    "name": field(call, "name"),
                    "arguments": json_text(arguments, capture),
                }
            )
        elif result is not None:
            response = field(result, "response")
            out.append(
                {
                    "type": "tool_call_response",
                    "id": field(result, "id"),
                    "response": json_text(response, capture),
                }
            )
        elif blob is not None:
            mime = field(blob, "mime_type")
            out.append({"type": "blob", "mime_type": mime, "modality": str(mime or "").split("/")[0] or None})
        elif file_data is not None:
            out.append({"type": "uri", "uri": field(file_data, "file_uri"), "mime_type": field(file_data, "mime_type")})
    return out


def input_messages(contents: Any, capture: g.CaptureSettings) -> list[dict[str, Any]]:
    """The request's ``contents`` (any form the SDK accepts) as input messages."""
    from google.genai import _transformers

    messages = []
    for content in _transformers.t_contents(contents) or []:
        role = field(content, "role") or "user"
        messages.append({"role": "assistant" if role == "model" else role, "parts": parts(field(content, "parts"), capture)})
    return messages


def system_instructions(config: Any, capture: g.CaptureSettings) -> list[dict[str, Any]] | None:
    """The config's ``system_instruction`` as parts (None when there is none)."""
    instruction = field(config, "system_instruction")
    if instruction is None:
        return None
    from google.genai import _transformers

    content = _transformers.t_content(instruction)
    return parts(field(content, "parts"), capture)


def output_messages(response: Any, capture: g.CaptureSettings) -> list[dict[str, Any]]:
    """One assistant message per candidate, with the conventions' finish reason."""
    messages = []
    for candidate in field(response, "candidates") or []:
        content = field(candidate, "content")
        items = parts(field(content, "parts"), capture)
        reason = field(candidate, "finish_reason")
        finish = FINISH_TO_SEMCONV.get(enum_text(reason), enum_text(reason)) if reason is not None else None
        if any(p["type"] == "tool_call" for p in items):
            finish = "tool_call"
        messages.append({"role": "assistant", "parts": items, "finish_reason": finish})
    return messages


def streamed_output_messages(text: list[str], reasons: list[str], capture: g.CaptureSettings) -> list[dict[str, Any]]:
    """The one assistant message a stream made: its text chunks joined, its last finish reason."""
    joined = g.scrub_text("".join(text), capture.max_chars)
    finish = reasons[-1] if reasons else None
    return [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": joined}] if joined else [],
            "finish_reason": FINISH_TO_SEMCONV.get(finish, finish) if finish else None,
        }
    ]


def tool_definitions(config: Any) -> list[dict[str, Any]] | None:
    """The tools the request offers: Python callables and function declarations (None when none)."""
    definitions = []
    for tool in field(config, "tools") or []:
        if callable(tool) and not hasattr(tool, "function_declarations"):
            definitions.append(
                {
                    "type": "function",
                    "name": getattr(tool, "__name__", "function"),
                    "description": (tool.__doc__ or "").strip(),
                }
            )
            continue
        for declaration in field(tool, "function_declarations") or []:
            definitions.append(
                {"type": "function", "name": field(declaration, "name"), "description": field(declaration, "description")}
            )
    return definitions or None


def json_text(value: Any, capture: g.CaptureSettings) -> str:
    """A tool's arguments or result as scrubbed, size-limited JSON.

    Scrubbed as a structure first, keys and values (a value under a sensitive key such as
    ``cvv`` is redacted by its key, a key that is itself personal data is replaced), so JSON
    escaping cannot hide anything; the encoded text then goes through the scrubber again (what
    ``default=str`` made of other objects) and is cut to the content limit.
    """
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", exclude_none=True)
    scrubber = scrub.default_scrubber()
    if scrubber is not None:
        value = safe_value(scrubber, value)  # [REDACTED:error] if it cannot be scrubbed
    return g.scrub_text(json.dumps(value, ensure_ascii=False, default=str), capture.max_chars)


def capture_inputs(span: Any, capture: g.CaptureSettings, contents: Any, config: Any) -> dict[str, Any]:
    """The request's content attributes (set on ``span`` with ``SPAN_ONLY``/``SPAN_AND_EVENT``), kept for the event."""
    out: dict[str, Any] = {sc.GEN_AI_INPUT_MESSAGES: input_messages(contents, capture)}
    system = system_instructions(config, capture)
    if system:
        out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = system
    tools = tool_definitions(config)
    if tools:
        out[sc.GEN_AI_TOOL_DEFINITIONS] = tools
    if capture.on_span:
        span.set_attributes({k: json.dumps(v, ensure_ascii=False, default=str) for k, v in out.items()})
    return out


def record_outputs(
    tel: Telemetry, span: Any, ctx: Any, base: dict[str, Any], inputs: dict[str, Any], outputs: list[dict[str, Any]]
) -> None:
    """Put the output messages on the span and/or emit the inference details event (with the inputs)."""
    capture = tel.capture
    if capture.on_span:
        span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps(outputs, ensure_ascii=False, default=str))
    if capture.on_event:
        attributes = dict(span.attributes or {}) if hasattr(span, "attributes") else dict(base)
        for key in _CONTENT_KEYS:
            attributes.pop(key, None)
        attributes.update(inputs)
        attributes[sc.GEN_AI_OUTPUT_MESSAGES] = outputs
        tel.logger.emit(event_name=sc.GEN_AI_INFERENCE_DETAILS_EVENT, attributes=attributes, context=ctx)
