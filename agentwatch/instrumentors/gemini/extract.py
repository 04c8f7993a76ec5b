"""Reading google-genai objects -- SDK models or their dict form -- into convention attributes.

Pure functions of what the SDK returned; the call modules run them under the guard, so a field an SDK
release renamed costs that attribute only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentwatch import semconv as sc


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK objects, ``obj[name]`` or ``obj[camelName]`` for dicts."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
        head, *rest = name.split("_")
        return obj.get(head + "".join(part.title() for part in rest))
    return getattr(obj, name, None)


def model_name(model: Any) -> str:
    """The model's own name: ``models/gemini-2.5-flash`` and Vertex resource paths lose their prefix."""
    if not isinstance(model, str):
        return str(model)
    if model.startswith("models/") or "/models/" in model:
        return model.rsplit("/", 1)[-1]
    return model


def enum_text(value: Any) -> str:
    """An SDK enum (or its string) as lower-case text: ``FinishReason.STOP`` -> ``stop``."""
    name = getattr(value, "name", None)
    return (name if isinstance(name, str) else str(value)).lower()


def redact(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` (the API key) in it."""
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "[REDACTED]")
    return text


@dataclass
class Usage:
    """Billed tokens of a response: input includes tool-use prompt tokens, output includes thinking tokens."""

    input: int | None = None
    output: int | None = None
    cached: int | None = None
    reasoning: int | None = None

    @classmethod
    def of(cls, metadata: Any) -> Usage | None:
        """From a response's ``usage_metadata`` (None when there is none)."""
        if metadata is None:
            return None
        prompt = field(metadata, "prompt_token_count")
        tool_prompt = field(metadata, "tool_use_prompt_token_count")
        candidates = field(metadata, "candidates_token_count")
        thoughts = field(metadata, "thoughts_token_count")
        cached = field(metadata, "cached_content_token_count")
        usage = cls()
        if prompt is not None or tool_prompt is not None:
            usage.input = (prompt or 0) + (tool_prompt or 0)
        if candidates is not None or thoughts is not None:
            usage.output = (candidates or 0) + (thoughts or 0)
        usage.cached = cached
        usage.reasoning = thoughts
        return usage

    def add(self, other: Usage | None) -> None:
        """Add ``other`` in place (a count stays None only while no usage had it)."""
        if other is None:
            return
        for name in ("input", "output", "cached", "reasoning"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, (mine or 0) + theirs)

    def attributes(self) -> dict[str, int]:
        """The ``gen_ai.usage.*`` attributes of the counts that are known."""
        out = {}
        for name, key in (
            ("input", sc.GEN_AI_USAGE_INPUT_TOKENS),
            ("output", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
            ("cached", sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
            ("reasoning", sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
        ):
            value = getattr(self, name)
            if value is not None:
                out[key] = int(value)
        return out


def response_attributes(response: Any) -> dict[str, Any]:
    """Id, model, finish reasons and requested function calls of a ``GenerateContentResponse`` (or chunk)."""
    attrs: dict[str, Any] = {}
    response_id = field(response, "response_id")
    if response_id:
        attrs[sc.GEN_AI_RESPONSE_ID] = str(response_id)
    model_version = field(response, "model_version")
    if model_version:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model_name(model_version)
    reasons = []
    calls = []
    for candidate in field(response, "candidates") or []:
        reason = field(candidate, "finish_reason")
        if reason is not None:
            reasons.append(enum_text(reason))
        content = field(candidate, "content")
        for part in field(content, "parts") or []:
            call = field(part, "function_call")
            if call is not None and field(call, "name"):
                calls.append(str(field(call, "name")))
    if reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    if calls:
        attrs[sc.GENAI_RESPONSE_TOOL_CALLS] = calls
    return attrs
