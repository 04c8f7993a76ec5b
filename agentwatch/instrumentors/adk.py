"""
Google ADK (Agent Development Kit, PyPI ``google-adk``) beside agentwatch's Gemini instrumentation:
one span and one ``gen_ai.client.token.usage`` series per model call, ADK's agent and tool spans kept,
ADK's content capture off unless the GenAI content opt-in asks for it.

ADK records its agents itself (``invoke_agent {agent}``, ``execute_tool {tool}`` -- a transfer is the
``execute_tool transfer_to_agent`` span --, ``gen_ai.agent.name``, ``gen_ai.conversation.id`` = the ADK
session id, ``gcp.vertex.agent.invocation_id``, its agent and tool metrics). It also records each Gemini
call (a ``generate_content {model}`` span and ``gen_ai.client.token.usage``) unless it sees a GenAI
instrumentation on ``google.genai.models.Models.generate_content``: its
``google.adk.telemetry._genai_instrumentor.is_instrumented()`` looks for the official
opentelemetry-instrumentation-google-genai's wrapper only, so beside any other Gemini instrumentation
every model call would be counted twice. This instrumentor answers that question by capability: ADK's
check also says yes when agentwatch's Gemini wrapper is on the method (found by walking the wrapper
chain, like :mod:`agentwatch.instrumentors.gemini.handoff` does for the official one). Nothing keys on
ADK's version: an ADK without that check gets a one-line warning that its model calls may be counted twice.

ADK stands down only under its telemetry schema v2 (the default since 2.x; ``call_llm`` is gone there):
with ``ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1`` ADK records the inference itself whatever is installed,
and the model calls are counted twice (one warning says so).

Content: ADK puts prompts and responses on its legacy spans unless ``ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS``
is false, and a request's ``RunConfig.telemetry`` can turn capture on. Here it follows
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` only: ``ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS`` is
set to match it (``SPAN_ONLY``/``SPAN_AND_EVENT``/``true`` on, anything else off) and
``ADK_TELEMETRY_IGNORE_RUN_CONFIG`` to ``1`` (ADK's admin lock) unless the operator set it. Captured
content leaves through the exporters' scrubber like every attribute; ADK's tool arguments and results are
also cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``.

Under ``opentelemetry-instrument`` the entry point ``agentwatch_adk`` loads it where google-adk is
installed; it wraps nothing until ADK's telemetry modules are imported, so an app without ADK pays
nothing. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=agentwatch_adk`` switches it off.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Collection as StrCollection
from contextlib import contextmanager
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import run
from agentwatch.instrumentors._framework_attributes import carrying

_instruments = ("google-adk >= 2.13",)

_DETECTION_MODULE = "google.adk.telemetry._genai_instrumentor"
_TRACING_MODULE = "google.adk.telemetry.tracing"
_GEMINI_WRAPPERS = "agentwatch.instrumentors.gemini"
_CAPTURE_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ADK_CONTENT_VAR = "ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS"
ADK_LOCK_VAR = "ADK_TELEMETRY_IGNORE_RUN_CONFIG"
ADK_SCHEMA_VAR = "ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN"
_TAG = "_agentwatch_adk"


def agentwatch_wraps(owner: Any, name: str) -> bool:
    """Whether agentwatch's Gemini wrapper is on ``owner.name`` at any depth of its wrapper chain."""
    node = vars(owner).get(name)
    for _ in range(32):  # wrapt FunctionWrappers (and functools.wraps layers) down to the SDK's function
        if node is None:
            return False
        wrapper = getattr(node, "_self_wrapper", None)
        if str(getattr(wrapper, "__module__", "") or "").startswith(_GEMINI_WRAPPERS):
            return True
        node = getattr(node, "__wrapped__", None)
    return False


_METHODS = tuple((owner, method) for owner in ("Models", "AsyncModels")
                 for method in ("generate_content", "generate_content_stream"))
_answer: list[Any] = [None, False]  # (the four method objects, the answer for them): one walk per wrapping change


def agentwatch_records_gemini() -> bool:
    """Whether agentwatch's Gemini instrumentation records ADK's model calls (ADK calls the async methods;
    ADK's own check looks at the sync ``generate_content``, so both must carry the wrapper)."""
    models = sys.modules.get("google.genai.models")
    if models is None:
        return False
    owners = {owner: getattr(models, owner) for owner in ("Models", "AsyncModels")}
    current = tuple(vars(owners[owner]).get(method) for owner, method in _METHODS)
    key, answer = _answer
    if key is not None and len(key) == len(current) and all(a is b for a, b in zip(key, current, strict=True)):
        return answer
    answer = all(agentwatch_wraps(owners[owner], method) for owner, method in _METHODS)
    _answer[:] = [current, answer]
    return answer


def _is_instrumented(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> bool:
    # ADK's answer first (the official instrumentation, then agentwatch steps aside itself); then ours.
    return bool(wrapped(*args, **kwargs)) or bool(run("ADK: Gemini capability check", agentwatch_records_gemini,
                                                      default=False, outcome="ADK records its model calls"))


@contextmanager
def _extra_attributes(wrapped: Any, args: Any, kwargs: Any, official: bool) -> Any:
    """ADK hands the model-call instrumentation the calling agent's name and ids (``extra_attributes``)
    through a context key of the official google-genai instrumentation: carried under agentwatch's key too,
    for agentwatch's Gemini span. ADK's own function runs only where that package is installed (without it,
    it warns on every model call)."""
    attributes = args[0] if args else kwargs.get("extra_attributes")
    with carrying(attributes):
        if official:
            with wrapped(*args, **kwargs):
                yield
        else:
            yield


def _clip_serialized(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    text = wrapped(*args, **kwargs)
    if not isinstance(text, str):
        return text
    from agentwatch.instrumentors._agents.settings import clip

    return run("ADK: tool content clip", clip, text, default="", outcome="the content is dropped")


INVOCATION_ID = "gcp.vertex.agent.invocation_id"
CONVERSATION_ID = "gen_ai.conversation.id"


def _set_ids(span: Any, ctx: Any) -> None:
    """ADK's invocation id (and session id) on its own span: schema v2 puts them on neither agent nor tool spans."""
    if span is None or ctx is None or not span.is_recording():
        return
    invocation_id = getattr(ctx, "invocation_id", None)
    if isinstance(invocation_id, str):
        span.set_attribute(INVOCATION_ID, invocation_id)
    session_id = getattr(getattr(ctx, "session", None), "id", None)
    if isinstance(session_id, str):
        span.set_attribute(CONVERSATION_ID, session_id)


def _agent_invocation(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    span = args[0] if args else kwargs.get("span")
    ctx = args[2] if len(args) > 2 else kwargs.get("ctx")
    run("ADK: agent ids", _set_ids, span, ctx, outcome="the invocation id is missing")
    return result


def _tool_call(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    from opentelemetry import trace

    span = (args[4] if len(args) > 4 else kwargs.get("span")) or trace.get_current_span()
    ctx = args[6] if len(args) > 6 else kwargs.get("invocation_context")
    run("ADK: tool ids", _set_ids, span, ctx, outcome="the invocation id is missing")
    return result


def content_opted_in(value: str | None) -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` puts content on spans."""
    return (value or "").strip().upper() in ("SPAN_ONLY", "SPAN_AND_EVENT", "TRUE", "1")


def apply_content_policy(environ: Any = os.environ) -> None:
    """ADK's content capture follows the GenAI opt-in (see the module docstring)."""
    wanted = "true" if content_opted_in(environ.get(_CAPTURE_VAR)) else "false"
    previous = environ.get(ADK_CONTENT_VAR)
    if previous is not None and previous.strip().lower() not in ("", wanted, "1" if wanted == "true" else "0"):
        warn_once("adk:content", f"ADK: {ADK_CONTENT_VAR}={previous} is replaced by {wanted}: ADK's content "
                  f"capture follows {_CAPTURE_VAR}", level=logging.INFO)
    environ[ADK_CONTENT_VAR] = wanted
    environ.setdefault(ADK_LOCK_VAR, "1")


class AgentwatchADKInstrumentor(BaseInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_adk``."""

    # wrapt cannot unregister post-import hooks: one per module for the process, active while instrumented.
    _hooked: set[str] = set()
    _lock = threading.RLock()
    _active = False
    _applied: list[tuple[Any, str]] = []

    def instrumentation_dependencies(self) -> StrCollection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if importlib.util.find_spec("google.adk") is None:
            # Under opentelemetry-instrument the loader skips the dependency check; say "not installed".
            raise ModuleNotFoundError("google-adk is not installed", name="google.adk")
        apply_content_policy()
        if os.environ.get(ADK_SCHEMA_VAR, "").strip() in ("1", "otel_semconv_1_36"):
            warn_once("adk:schema-v1", f"ADK: {ADK_SCHEMA_VAR}=1 makes ADK record every Gemini call itself, "
                      "beside agentwatch's Gemini span: model calls and tokens are counted twice")
        AgentwatchADKInstrumentor._active = True
        for name, apply in ((_DETECTION_MODULE, self._apply_detection), (_TRACING_MODULE, self._apply_tracing)):
            if name in sys.modules:
                apply(sys.modules[name])
            elif name not in AgentwatchADKInstrumentor._hooked:
                AgentwatchADKInstrumentor._hooked.add(name)
                wrapt.register_post_import_hook(lambda module, fn=apply: self._on_import(module, fn), name)

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            AgentwatchADKInstrumentor._active = False
            for module, name in AgentwatchADKInstrumentor._applied:
                current = vars(module).get(name)
                original = getattr(current, "__wrapped__", None) if getattr(current, _TAG, False) else None
                if original is not None:
                    setattr(module, name, original)
            AgentwatchADKInstrumentor._applied = []

    def _on_import(self, module: Any, apply: Any) -> None:
        if AgentwatchADKInstrumentor._active:
            run(f"ADK: instrumenting {module.__name__}", apply, module, outcome="ADK's telemetry is left as it is")

    def _wrap(self, module: Any, name: str, wrapper: Any) -> bool:
        current = vars(module).get(name)
        if current is None:
            return False
        if not getattr(current, _TAG, False):
            wrapped = wrapt.FunctionWrapper(current, wrapper)
            setattr(wrapped, _TAG, True)
            setattr(module, name, wrapped)
            with self._lock:
                AgentwatchADKInstrumentor._applied.append((module, name))
        return True

    def _apply_detection(self, module: Any) -> None:
        if not self._wrap(module, "is_instrumented", _is_instrumented):
            warn_once("adk:detection", "ADK: this google-adk has no GenAI-instrumentation check "
                      "(_genai_instrumentor.is_instrumented); its model-call spans and token metrics may count "
                      "each Gemini call a second time")

    def _apply_tracing(self, module: Any) -> None:
        official = importlib.util.find_spec("opentelemetry.instrumentation.google_genai") is not None
        self._wrap(module, "_use_extra_generate_content_attributes",
                   lambda wrapped, instance, args, kwargs: _extra_attributes(wrapped, args, kwargs, official))
        self._wrap(module, "trace_agent_invocation", _agent_invocation)
        self._wrap(module, "trace_tool_call", _tool_call)
        for name in ("_serialize_tool_response", "safe_json_serialize"):  # tool results; tool arguments, requests
            self._wrap(module, name, _clip_serialized)
