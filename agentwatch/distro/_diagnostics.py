"""agentwatch's own messages to the user: one line each, once per kind.

They go through the ``agentwatch`` logger, which has its own stderr handler and
does not propagate: the root logger carries the OpenTelemetry log handler, so a
propagated warning would be exported but never shown (Python's last-resort
handler only prints when no handler exists). Every message is also kept in
``messages()`` so ``agentwatch doctor`` and tests can read them.
"""

from __future__ import annotations

import logging
import re
import sys
import threading

logger = logging.getLogger("agentwatch")

# user:password@ in a URL, and the values of its query parameters (tokens, signatures, API keys).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")
_QUERY_VALUE = re.compile(r"([?&][^=&#\s'\"]+)=[^&#\s'\"]+")


def hide_credentials(text: str) -> str:
    """``text`` with URL credentials and query values replaced by ``***``: for every line agentwatch
    prints about the user's configuration (endpoints, check URLs), where such values are secrets."""
    if "@" in text:
        text = _USERINFO.sub(r"\1***@", text)
    if "=" in text and ("?" in text or "&" in text):
        text = _QUERY_VALUE.sub(r"\1=***", text)
    return text

_lock = threading.Lock()
_seen: set[str] = set()
_messages: list[str] = []
_problems: list[str] = []  # the messages at WARNING and above: what ``agentwatch doctor`` fails on


class LiveStreamHandler(logging.StreamHandler):
    """Writes to whatever ``sys.<stream_name>`` is at emit time (pytest and tools swap it)."""

    stream_name = "stderr"

    @property  # type: ignore[override]
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _StderrHandler(LiveStreamHandler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("agentwatch %(levelname)s: %(message)s"))


def _ensure_handler() -> None:
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def warn_once(key: str, message: str, level: int = logging.WARNING) -> bool:
    """Log ``message`` the first time ``key`` is seen; return whether it was logged."""
    message = hide_credentials(message)
    with _lock:
        if key in _seen:
            return False
        _seen.add(key)
        _messages.append(message)
        if level >= logging.WARNING:
            _problems.append(message)
    _ensure_handler()
    logger.log(level, message)
    return True


def info(message: str) -> None:
    """An informational line (kept for ``doctor``), shown at INFO."""
    message = hide_credentials(message)
    with _lock:
        _messages.append(message)
    _ensure_handler()
    logger.info(message)


def messages() -> list[str]:
    """All messages emitted so far in this process."""
    with _lock:
        return list(_messages)


def problems() -> list[str]:
    """The warnings emitted so far in this process (not the informational lines)."""
    with _lock:
        return list(_problems)


def reset() -> None:
    """Forget what was warned (tests only)."""
    with _lock:
        _seen.clear()
        _messages.clear()
        _problems.clear()
