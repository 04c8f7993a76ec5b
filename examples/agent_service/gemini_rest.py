"""Calls Gemini's REST API with one shared ``httpx.AsyncClient``, as many services do
instead of (or before adopting) the google-genai SDK."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx


class ModelError(Exception):
    """The language model could not answer (HTTP error, bad payload or transport failure)."""

    def __init__(self, message: str, *, upstream_status: int | None = None, reason: str = "model_error"):
        super().__init__(message)
        self.upstream_status = upstream_status
        self.reason = reason


@dataclass
class Completion:
    text: str
    model: str
    finish_reason: str
    input_tokens: int = 0
    output_tokens: int = 0
    response_id: str = ""
    raw: dict = field(default_factory=dict, repr=False)


class GeminiRest:
    """``generateContent`` over REST. ``base_url`` is e.g. ``https://generativelanguage.googleapis.com``."""

    def __init__(self, client: httpx.AsyncClient, *, base_url: str, api_key: str, model: str, api_version: str = "v1beta"):
        self._client = client
        self._url = f"{base_url.rstrip('/')}/{api_version}/models/{model}:generateContent"
        self._headers = {"x-goog-api-key": api_key, "Content-Type": "application/json"}
        self.model = model

    async def generate(
        self, contents: list[dict], *, system: str | None = None, temperature: float = 0.2, max_output_tokens: int = 256
    ) -> Completion:
        payload: dict = {
            "contents": contents,
            "generationConfig": {"temperature": temperature, "maxOutputTokens": max_output_tokens},
        }
        if system:
            payload["systemInstruction"] = {"parts": [{"text": system}]}
        try:
            response = await self._client.post(self._url, json=payload, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise ModelError(f"model call timed out: {type(exc).__name__}", reason="timeout") from exc
        except httpx.TransportError as exc:
            raise ModelError(f"model unreachable: {type(exc).__name__}", reason="unreachable") from exc

        if response.status_code != 200:
            status = ""
            try:
                status = response.json().get("error", {}).get("status", "")
            except ValueError:
                pass
            raise ModelError(
                f"model answered HTTP {response.status_code} {status}".rstrip(),
                upstream_status=response.status_code,
                reason=status.lower() or "http_error",
            )
        try:
            data = response.json()
            candidate = data["candidates"][0]
            text = "".join(part.get("text", "") for part in candidate["content"]["parts"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelError("model answer had an unexpected shape", reason="bad_response") from exc
        usage = data.get("usageMetadata") or {}
        return Completion(
            text=text,
            model=data.get("modelVersion", self.model),
            finish_reason=candidate.get("finishReason", ""),
            input_tokens=usage.get("promptTokenCount", 0),
            output_tokens=usage.get("candidatesTokenCount", 0),
            response_id=data.get("responseId", ""),
            raw=data,
        )
