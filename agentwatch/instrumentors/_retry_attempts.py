"""A failed attempt of a retry loop, recorded on its owner's span and counted (shared by the tenacity hook of
:mod:`agentwatch.instrumentors.retries`, the Gemini call and the httpx transport retries)."""

from __future__ import annotations

import email.utils
import math
import re
import time
from typing import Any

from opentelemetry.metrics import get_meter

from agentwatch import semconv as sc
from agentwatch.version import __version__

SCOPE = "agentwatch.instrumentors.retries"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class RetryInstruments:
    """The retry counter and the Gemini 429 delay histogram, from the catalogue."""

    def __init__(self, meter_provider: Any = None):
        meter = get_meter(SCOPE, __version__, meter_provider=meter_provider)
        built = sc.create_instruments(meter, sc.metrics_for_role(sc.RESILIENCE_METRICS, "retries"))
        self.failed = built[sc.RETRY_FAILED_ATTEMPTS_METRIC]
        self.rate_limited = built[sc.GENAI_RATE_LIMIT_DELAY_METRIC]


def status_code(error: BaseException | None) -> int | None:
    """The HTTP status of an SDK error (``code`` of google-genai's APIError, ``status_code`` of httpx's)."""
    for holder in (error, getattr(error, "response", None)):
        for name in ("code", "status_code", "status"):
            value = getattr(holder, name, None)
            if isinstance(value, int) and 100 <= value <= 599:
                return value
    return None


def error_type(error: BaseException | None, code: int | None = None) -> str:
    """``error.type``: the HTTP status when there is one (``code`` if known), else the exception class;
    ``_result`` for a retried result."""
    if error is None:
        return "_result"
    code = status_code(error) if code is None else code
    return str(code) if code is not None else type(error).__qualname__


def advised_delay(error: BaseException | None) -> float | None:
    """Seconds the server asked to wait: google.rpc.RetryInfo ``retryDelay`` in the error body, else ``Retry-After``."""
    details = getattr(error, "details", None)
    body = details.get("error", details) if isinstance(details, dict) else None
    items = body.get("details") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    headers = getattr(getattr(error, "response", None), "headers", None)
    raw = headers.get("retry-after") if headers is not None and hasattr(headers, "get") else None
    if not raw:
        return None
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        try:
            seconds = email.utils.parsedate_to_datetime(str(raw)).timestamp() - time.time()  # an HTTP date
        except (TypeError, ValueError, OverflowError, IndexError):
            return None  # nonsense from the server: no advised delay, the attempt is still recorded
    return max(0.0, seconds) if math.isfinite(seconds) else None


class Attempts:
    """The failed attempts one owner's retry loops saw: recorded on its span and counted."""

    def __init__(self, span: Any, instruments: RetryInstruments, metric_attributes: dict[str, Any],
                 rate_limit_attributes: dict[str, Any] | None = None):
        self.span = span
        self.instruments = instruments
        self.metric_attributes = metric_attributes
        # Gemini calls: a 429 also feeds the rate-limit histogram, with these attributes
        self.rate_limit_attributes = rate_limit_attributes
        self.failed = 0
        self.retried = 0

    def record(self, error: BaseException | None, attempt: int, delay: float | None, retried: bool) -> None:
        """One failed attempt: an event on the span, the counter, and (Gemini 429) the advised delay."""
        self.failed += 1
        self.retried += retried
        code = status_code(error)
        kind = error_type(error, code)
        outcome = "retried" if retried else "exhausted"
        event: dict[str, Any] = {sc.RETRY_ATTEMPT: attempt, sc.ERROR_TYPE: kind, sc.RETRY_OUTCOME: outcome}
        if code is not None:
            event[sc.HTTP_RESPONSE_STATUS_CODE] = code
        if delay is not None:
            event[sc.RETRY_DELAY] = float(delay)
        advised = advised_delay(error) if code == 429 else None
        if advised is not None:
            event[sc.RETRY_ADVISED_DELAY] = advised
        self.span.add_event(sc.RETRY_EVENT, event)
        self.instruments.failed.add(1, {**self.metric_attributes, sc.ERROR_TYPE: kind, sc.RETRY_OUTCOME: outcome})
        if self.rate_limit_attributes is not None and code == 429:
            self.instruments.rate_limited.record(advised or 0.0, self.rate_limit_attributes)
