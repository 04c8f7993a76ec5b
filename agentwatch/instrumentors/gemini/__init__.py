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

- **Retries stay one call.** The SDK's retry loop (``HttpRetryOptions``, tenacity) runs
  below the wrapped method: a retried call is one span, with an
  ``agentwatch.retry.failed_attempt`` event per failed attempt (error, status, wait,
  the delay a 429 advised) and ``agentwatch.retry.attempts``; the
  ``agentwatch.retry.failed_attempts`` counter and, for 429s,
  ``agentwatch.gen_ai.client.rate_limit.retry_delay`` (:mod:`.retries`).
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

Layout
------

One module per concern, after the official opentelemetry-instrumentation-google-genai:
``call`` (the lifecycle every call shares), ``generate_content``, ``embed_content`` and
``count_tokens`` (what each operation reads), ``round_trips`` (the HTTP requests inside one call),
``streams`` (the shared sync/async stream proxy), ``retries`` (the SDK's retry loop), ``tools`` (tool names and ``execute_tool`` spans),
``content`` (opt-in content capture), ``extract`` (reading SDK objects), ``handoff`` (stepping aside
for the official instrumentation), ``wrappers`` (the public-method wrappers), ``telemetry`` and
``config`` (instruments and settings), ``package`` (the supported google-genai releases).

API
---
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from agentwatch.distro._diagnostics import warn_once
from agentwatch.instrumentors.gemini import handoff, retries, round_trips, tools, wrappers
from agentwatch.instrumentors.gemini.count_tokens import CountTokensCall
from agentwatch.instrumentors.gemini.embed_content import EmbedContentCall
from agentwatch.instrumentors.gemini.generate_content import GenerateContentCall
from agentwatch.instrumentors.gemini.package import _instruments
from agentwatch.instrumentors.gemini.telemetry import Telemetry
from agentwatch.instrumentors.retries import RetryInstruments, add_owner_finder

__all__ = ["GeminiInstrumentor"]

_MODELS_MODULE = "google.genai.models"
_OPERATIONS = (GenerateContentCall, EmbedContentCall, CountTokensCall)


def _model_method(target: str) -> tuple[Any, str, bool] | None:
    """(class, method name, is async) of ``"Class.method"`` in google.genai.models; None (said once) if absent."""
    import google.genai.models as models

    class_name, method = target.split(".")
    owner = getattr(models, class_name, None)
    if owner is None or not hasattr(owner, method):
        warn_once(f"gemini:missing:{target}", f"google-genai has no {target}; it is not instrumented")
        return None
    return owner, method, class_name.startswith("Async")


class GeminiInstrumentor(BaseInstrumentor):
    """OpenTelemetry GenAI instrumentation of the google-genai SDK (``google.genai``)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        """Wrap the public model methods (spans, metrics), the per-request ones (round trips) and the
        SDK's tool runner (``execute_tool`` spans); what this google-genai lacks is said once and skipped."""
        tel = Telemetry(kwargs.get("tracer_provider"), kwargs.get("meter_provider"), kwargs.get("logger_provider"))
        self._wrapped: list[tuple[Any, str]] = []
        # the SDK's retry loop (tenacity) reports its failed attempts to the call span they belong to
        self._unhook_retries = add_owner_finder(retries.owner_finder(RetryInstruments(kwargs.get("meter_provider"))))
        for call_class in _OPERATIONS:
            for target, stream in call_class.methods:
                found = _model_method(target)
                if found is not None:
                    owner, method, is_async = found
                    wrapper = wrappers.wrapper(tel, call_class, owner, method, stream, is_async)
                    self._wrap(_MODELS_MODULE, target, wrapper, owner, method)
        for target, stream in round_trips.METHODS:
            found = _model_method(target)
            if found is not None:
                owner, method, is_async = found
                self._wrap(_MODELS_MODULE, target, round_trips.wrapper(stream, is_async), owner, method)
        try:
            import google.genai._extra_utils as tool_runner
        except ImportError:
            tool_runner = None
        for function, is_async, kind in tools.FUNCTIONS:
            if tool_runner is None or not callable(getattr(tool_runner, function, None)):
                warn_once(f"gemini:missing:{function}", f"google-genai has no {function}; tool runs get no spans")
                continue
            self._wrap(tools.MODULE, function, tools.wrapper(tel, kind, is_async), tool_runner, function)

    def _wrap(self, module: str, target: str, wrapper: Any, owner: Any, name: str) -> None:
        wrap_function_wrapper(module, target, wrapper)
        self._wrapped.append((owner, name))

    def _uninstrument(self, **kwargs: Any) -> None:
        """Restore every wrapped method and function, and forget what was learnt about wrapper chains."""
        for owner, name in reversed(getattr(self, "_wrapped", [])):
            unwrap(owner, name)
        self._wrapped = []
        unhook = getattr(self, "_unhook_retries", None)
        if unhook is not None:
            unhook()
        self._unhook_retries = None
        handoff.forget()
