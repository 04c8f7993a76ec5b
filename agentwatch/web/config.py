"""The health/error settings, read from the environment, never raising.

A bad value costs only that value: one warning line names the variable, the
value and what is used instead (``agentwatch.distro._diagnostics.warn_once``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.settings import _Reader

_PREFIX = re.compile(r"(/[A-Za-z0-9._~\-]+)+")
_GEMINI_MODES = ("auto", "off", "key", "live")


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


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def _prefix(reader: _Reader, default: str) -> str:
    """``AGENTWATCH_HEALTH_PREFIX`` as ``/a/b`` (slashes at either end optional)."""
    value = reader.raw(ev.AGENTWATCH_HEALTH_PREFIX)
    if value is None:
        return default
    candidate = "/" + value.strip("/")
    if _PREFIX.fullmatch(candidate):
        return candidate
    reader._bad(ev.AGENTWATCH_HEALTH_PREFIX, value, "a URL path such as /health or /ops/health", default)  # noqa: SLF001
    return default


def _http_urls(value: str | None) -> list[tuple[str, str]]:
    """``AGENTWATCH_HEALTH_HTTP_URLS``: ``[name=]http(s)://...`` items; a bad one is said and skipped."""
    urls = []
    for item in _split(value):
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
            name = "http:" + (urlsplit(url).hostname or "dependency")
        urls.append((name, url))
    return urls


def load(environ: Mapping[str, str] | None = None) -> WebSettings:
    """Read every variable once, with the distro's reader (same accepted values, same warning lines)."""
    s = WebSettings()
    r = _Reader(os.environ if environ is None else environ, {})
    s.health_enabled = r.boolean(ev.AGENTWATCH_HEALTH_ENABLED, s.health_enabled)
    s.prefix = _prefix(r, s.prefix)
    s.check_timeout = r.number(ev.AGENTWATCH_HEALTH_CHECK_TIMEOUT, s.check_timeout, 0.01, 300.0)
    s.cache_ttl = r.number(ev.AGENTWATCH_HEALTH_CACHE_TTL, s.cache_ttl, 0.0, 86400.0)
    critical = r.raw(ev.AGENTWATCH_HEALTH_CRITICAL)
    if critical is not None:
        s.critical = _split(critical)
    s.sqlite_path = r.raw(ev.AGENTWATCH_HEALTH_SQLITE_PATH)
    s.disk_path = r.text(ev.AGENTWATCH_HEALTH_DISK_PATH, s.disk_path)
    s.disk_min_free_mb = r.number(ev.AGENTWATCH_HEALTH_DISK_MIN_FREE_MB, s.disk_min_free_mb, 0.0, 1e9)
    s.gemini = r.choice(ev.AGENTWATCH_HEALTH_GEMINI, s.gemini, _GEMINI_MODES)
    s.gemini_ttl = r.number(ev.AGENTWATCH_HEALTH_GEMINI_TTL, s.gemini_ttl, 1.0, 86400.0)
    s.gemini_model = r.text(ev.AGENTWATCH_HEALTH_GEMINI_MODEL, s.gemini_model)
    s.chroma_url = r.raw(ev.AGENTWATCH_HEALTH_CHROMA_URL)
    s.http_urls = _http_urls(r.raw(ev.AGENTWATCH_HEALTH_HTTP_URLS))
    s.startup_retries = int(r.number(ev.AGENTWATCH_HEALTH_STARTUP_RETRIES, s.startup_retries, 0, 100))
    s.startup_backoff = r.number(ev.AGENTWATCH_HEALTH_STARTUP_BACKOFF, s.startup_backoff, 0.0, 60.0)
    s.drain_delay = r.number(ev.AGENTWATCH_DRAIN_DELAY, s.drain_delay, 0.0, 3600.0)
    s.error_handlers = r.boolean(ev.AGENTWATCH_ERROR_HANDLERS, s.error_handlers)
    s.error_detail = r.boolean(ev.AGENTWATCH_ERROR_DETAIL, s.error_detail)
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
