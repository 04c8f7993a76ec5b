"""Calls Gemini through the official google-genai SDK (one shared ``genai.Client``).

The demo talks to the local fake (``examples/fake_gemini.py``) by default and to the real
Gemini API when a key is set and no base URL override is given; see :func:`endpoint`.

Resilience, as such services do it: the SDK retries a 429 (``HttpRetryOptions``, up to
``AGENT_MODEL_RETRY_ATTEMPTS`` attempts, short backoff), and an aiobreaker circuit breaker named
``gemini`` opens after ``AGENT_BREAKER_FAIL_MAX`` model failures in a row (rate limits do not
count) and refuses model calls for ``AGENT_BREAKER_RESET_S`` seconds (then one trial call).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

import aiobreaker
import httpx2
from google import genai
from google.genai import errors, types

FAKE_GEMINI_URL = "http://127.0.0.1:8766"
_FAKE_KEY = "fake-gemini-key"


class ModelError(Exception):
    """The language model could not answer (HTTP error, bad payload or transport failure)."""

    def __init__(self, message: str, *, upstream_status: int | None = None, reason: str = "model_error"):
        super().__init__(message)
        self.upstream_status = upstream_status
        self.reason = reason


def _rate_limited(error: BaseException) -> bool:
    """A 429 means "slow down", not "the model is down": it does not count against the breaker."""
    return isinstance(error, ModelError) and error.upstream_status == 429


@dataclass
class Completion:
    text: str
    model: str
    finish_reason: str
    input_tokens: int = 0
    output_tokens: int = 0
    response_id: str = ""


def endpoint(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """``(base_url, api_key)``: ``base_url`` None means the SDK's default (the real API).

    - ``GEMINI_BASE_URL`` (or the SDK's own ``GOOGLE_GEMINI_BASE_URL``) set: that server;
    - else ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` set: the real Gemini API;
    - else: the local fake on ``http://127.0.0.1:8766``.
    """
    key = environ.get("GEMINI_API_KEY") or environ.get("GOOGLE_API_KEY") or ""
    base_url = environ.get("GEMINI_BASE_URL") or environ.get("GOOGLE_GEMINI_BASE_URL") or None
    if base_url is None and not key:
        base_url = FAKE_GEMINI_URL
    return base_url, key or _FAKE_KEY


class GeminiClient:
    """``generate_content`` with google-genai's async client."""

    def __init__(self, *, base_url: str | None, api_key: str, model: str, timeout_s: float = 30.0):
        retry = types.HttpRetryOptions(
            attempts=int(os.environ.get("AGENT_MODEL_RETRY_ATTEMPTS", "3")), initial_delay=0.05, max_delay=0.5,
            jitter=0.05, http_status_codes=[429],
        )
        options = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000), retry_options=retry)
        self._client = genai.Client(api_key=api_key, http_options=options)
        self.model = model
        self.breaker = aiobreaker.CircuitBreaker(
            fail_max=int(os.environ.get("AGENT_BREAKER_FAIL_MAX", "3")),
            timeout_duration=timedelta(seconds=float(os.environ.get("AGENT_BREAKER_RESET_S", "30"))),
            exclude=[_rate_limited],
            name="gemini",
        )

    @property
    def client(self) -> genai.Client:
        """The SDK client, for the hand-written function-calling loop (order_tools.py)."""
        return self._client

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()

    async def generate(
        self, contents: list[dict], *, system: str | None = None, temperature: float = 0.2, max_output_tokens: int = 256
    ) -> Completion:
        """One model answer through the breaker; :class:`ModelError` when the model failed or the breaker is open."""
        try:
            return await self.breaker.call_async(
                self._generate, contents, system=system, temperature=temperature, max_output_tokens=max_output_tokens
            )
        except aiobreaker.CircuitBreakerError as exc:
            if isinstance(exc.__cause__, ModelError):  # the failure that opened it (or a failed trial call)
                raise exc.__cause__ from None
            raise ModelError("model circuit breaker open", reason="circuit_open") from exc

    async def _generate(
        self, contents: list[dict], *, system: str | None, temperature: float, max_output_tokens: int
    ) -> Completion:
        config = types.GenerateContentConfig(
            system_instruction=system, temperature=temperature, max_output_tokens=max_output_tokens
        )
        try:
            response = await self._client.aio.models.generate_content(model=self.model, contents=contents, config=config)
        except errors.APIError as exc:
            status = (exc.status or "").lower()
            raise ModelError(
                f"model answered HTTP {exc.code} {exc.status or ''}".rstrip(),
                upstream_status=exc.code,
                reason=status or "http_error",
            ) from exc
        except httpx2.TimeoutException as exc:
            raise ModelError(f"model call timed out: {type(exc).__name__}", reason="timeout") from exc
        except httpx2.TransportError as exc:
            raise ModelError(f"model unreachable: {type(exc).__name__}", reason="unreachable") from exc
        try:
            candidate = response.candidates[0]
            text = "".join(part.text or "" for part in candidate.content.parts)
        except (AttributeError, IndexError, TypeError) as exc:
            raise ModelError("model answer had an unexpected shape", reason="bad_response") from exc
        usage = response.usage_metadata
        return Completion(
            text=text,
            model=response.model_version or self.model,
            finish_reason=candidate.finish_reason.name if candidate.finish_reason else "",
            input_tokens=(usage.prompt_token_count or 0) if usage else 0,
            output_tokens=((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0,
            response_id=response.response_id or "",
        )
