"""The health/error settings, read from the environment, never raising.

A bad value costs only that value: one warning line names the variable, the
value and what is used instead (``agentwatch.distro._diagnostics.warn_once``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.settings import _Reader

_PREFIX = re.compile(r"(/[A-Za-z0-9._~\-]+)+")


def _raw(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _bad(name: str, value: str, expected: str, used: object) -> None:
    warn_once(f"config:{name}", f"{name}={value!r} is not {expected}; using {used!r} instead")


def read_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """The distro's boolean reader (same accepted values, same one-line warning)."""
    return _Reader(environ, {}).boolean(name, default)


def read_number(environ: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """The distro's number reader (range-checked, same one-line warning)."""
    return _Reader(environ, {}).number(name, default, low, high)


def read_list(environ: Mapping[str, str], name: str) -> list[str]:
    value = _raw(environ, name)
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


@dataclass
class WebSettings:
    health_enabled: bool = True
    prefix: str = "/health"
    check_timeout: float = 2.0
    cache_ttl: float = 5.0
    critical: list[str] | None = None  # None: each check's own default
    sqlite_path: str | None = None
    disk_path: str = "."
    disk_min_free_mb: float = 100.0
    gemini: str = "auto"
    gemini_ttl: float = 300.0
    gemini_model: str = "gemini-2.5-flash"
    chroma_url: str | None = None
    http_urls: list[tuple[str, str]] = field(default_factory=list)
    startup_retries: int = 3
    startup_backoff: float = 0.5
    drain_delay: float = 0.0
    error_handlers: bool = True
    error_detail: bool = False


def load(environ: Mapping[str, str] | None = None) -> WebSettings:
    environ = os.environ if environ is None else environ
    s = WebSettings()
    s.health_enabled = read_bool(environ, ev.AGENTWATCH_HEALTH_ENABLED, True)
    prefix = _raw(environ, ev.AGENTWATCH_HEALTH_PREFIX)
    if prefix is not None:
        candidate = "/" + prefix.strip("/")
        if _PREFIX.fullmatch(candidate):
            s.prefix = candidate
        else:
            _bad(ev.AGENTWATCH_HEALTH_PREFIX, prefix, "a URL path such as /health or /ops/health", s.prefix)
    s.check_timeout = read_number(environ, ev.AGENTWATCH_HEALTH_CHECK_TIMEOUT, 2.0, 0.01, 300.0)
    s.cache_ttl = read_number(environ, ev.AGENTWATCH_HEALTH_CACHE_TTL, 5.0, 0.0, 86400.0)
    if _raw(environ, ev.AGENTWATCH_HEALTH_CRITICAL) is not None:
        s.critical = read_list(environ, ev.AGENTWATCH_HEALTH_CRITICAL)
    s.sqlite_path = _raw(environ, ev.AGENTWATCH_HEALTH_SQLITE_PATH)
    s.disk_path = _raw(environ, ev.AGENTWATCH_HEALTH_DISK_PATH) or "."
    s.disk_min_free_mb = read_number(environ, ev.AGENTWATCH_HEALTH_DISK_MIN_FREE_MB, 100.0, 0.0, 1e9)
    gemini = _raw(environ, ev.AGENTWATCH_HEALTH_GEMINI)
    if gemini is not None:
        if gemini.lower() in ("auto", "off", "key", "live"):
            s.gemini = gemini.lower()
        else:
            _bad(ev.AGENTWATCH_HEALTH_GEMINI, gemini, "one of auto, off, key, live", s.gemini)
    s.gemini_ttl = read_number(environ, ev.AGENTWATCH_HEALTH_GEMINI_TTL, 300.0, 1.0, 86400.0)
    s.gemini_model = _raw(environ, ev.AGENTWATCH_HEALTH_GEMINI_MODEL) or s.gemini_model
    s.chroma_url = _raw(environ, ev.AGENTWATCH_HEALTH_CHROMA_URL)
    for item in read_list(environ, ev.AGENTWATCH_HEALTH_HTTP_URLS):
        name, sep, url = item.partition("=")
        if not sep:
            name, url = "", item
        name, url = name.strip(), url.strip()
        if not url.startswith(("http://", "https://")):
            warn_once(
                f"config:{ev.AGENTWATCH_HEALTH_HTTP_URLS}:{item}",
                f"{ev.AGENTWATCH_HEALTH_HTTP_URLS} item {item!r} is not [name=]http(s)://...; skipping it",
            )
            continue
        if not name:
            from urllib.parse import urlsplit

            name = "http:" + (urlsplit(url).hostname or "dependency")
        s.http_urls.append((name, url))
    s.startup_retries = int(read_number(environ, ev.AGENTWATCH_HEALTH_STARTUP_RETRIES, 3, 0, 100))
    s.startup_backoff = read_number(environ, ev.AGENTWATCH_HEALTH_STARTUP_BACKOFF, 0.5, 0.0, 60.0)
    s.drain_delay = read_number(environ, ev.AGENTWATCH_DRAIN_DELAY, 0.0, 0.0, 3600.0)
    s.error_handlers = read_bool(environ, ev.AGENTWATCH_ERROR_HANDLERS, True)
    s.error_detail = read_bool(environ, ev.AGENTWATCH_ERROR_DETAIL, False)
    return s


_cached: WebSettings | None = None


def settings() -> WebSettings:
    global _cached  # noqa: PLW0603
    if _cached is None:
        _cached = load()
    return _cached


def reset() -> None:
    global _cached  # noqa: PLW0603
    _cached = None
