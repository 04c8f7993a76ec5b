"""Scrubbing of the free text the web layer exports or returns (check errors, exception messages).

Uses the distro's scrubber (``agentwatch.distro.scrubbing``) when it offers a
text function; otherwise a small built-in pass that removes what must never
leave the process: URL credentials and ``key=``/``token=`` query values,
``Authorization``/API-key header values, vendor-prefixed secrets, e-mail addresses.
"""

from __future__ import annotations

import re
from typing import Callable

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)([?&;](?:key|api[_-]?key|token|access_token|password|secret|sig|signature)=)[^&#\s'\"]+"), r"\1[REDACTED]"),
    (re.compile(r"(?i)\b(authorization|x-goog-api-key|x-api-key|api[_-]?key)(\s*[:=]\s*)(bearer\s+)?[^\s,;'\"]+"), r"\1\2[REDACTED]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer [REDACTED]"),
    (re.compile(r"\b(?:sk-(?:proj-)?|ghp_|xox[bp]-|AIza)[A-Za-z0-9_\-]{10,}"), "[REDACTED]"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "[REDACTED]"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1[REDACTED]@"),
    (re.compile(r"(?i)\b[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}\b", re.ASCII), "[EMAIL]"),
]


def _builtin(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _resolve() -> Callable[[str], str]:
    try:
        from agentwatch.distro import scrubbing  # the distro's scrubber, when present
    except Exception:  # noqa: BLE001
        return _builtin
    for name in ("scrub_text", "scrub_string", "scrub"):
        function = getattr(scrubbing, name, None)
        if callable(function):

            def distro_scrub(text: str, _f=function) -> str:
                try:
                    result = _f(text)
                    if isinstance(result, str):
                        return _builtin(result)
                except Exception:  # noqa: BLE001,S110
                    pass
                return _builtin(text)

            return distro_scrub
    return _builtin


_scrubber: Callable[[str], str] | None = None


def scrub_text(text: str) -> str:
    """``text`` with secrets and PII removed; never raises."""
    global _scrubber  # noqa: PLW0603
    if _scrubber is None:
        _scrubber = _resolve()
    try:
        return _scrubber(str(text))
    except Exception as error:  # noqa: BLE001 - never return what could not be scrubbed
        from agentwatch.web._guard import step_failed

        step_failed("text scrubbing", error, "such texts are replaced by [unavailable]")
        return "[unavailable]"
