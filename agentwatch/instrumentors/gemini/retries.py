"""The SDK's retry loop inside one call: its failed attempts on the call span (see :mod:`agentwatch.instrumentors.retries`).

google-genai sends each request through a tenacity loop (``HttpRetryOptions``; one attempt when none are
set) *below* the public method this instrumentor wraps, so a call that was retried is still one call
span: each failed attempt the loop saw becomes an ``agentwatch.retry.failed_attempt`` event on it and a
count of ``agentwatch.retry.failed_attempts``; a 429 also records the delay Gemini advised.
"""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.instrumentors._retry_attempts import Attempts, RetryInstruments
from agentwatch.instrumentors.gemini.call import CURRENT


def owner_finder(instruments: RetryInstruments):
    """``finder(retry_state)``: the attempts of the Gemini call whose API client runs this tenacity loop."""

    def find(retry_state: Any) -> Attempts | None:
        call = CURRENT.get()
        if call is None or call.ended:
            return None
        api = getattr(call.instance, "_api_client", None)
        if api is None or getattr(retry_state.fn, "__self__", None) is not api:
            return None  # another tenacity loop running inside the call (not the SDK's request)
        if call.retries is None:
            base = call.base
            call.retries = Attempts(
                call.span, instruments,
                {sc.RETRY_SOURCE: "gemini", sc.GEN_AI_REQUEST_MODEL: call.model},
                {k: base[k] for k in (sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_PROVIDER_NAME, sc.SERVER_ADDRESS) if k in base},
            )
        return call.retries

    return find
