"""The built-in checks, enabled by configuration (the "Health and errors" variables).

| Check | Enabled when | Critical by default | What it does |
|---|---|---|---|
| `sqlite` | `AGENTWATCH_HEALTH_SQLITE_PATH` set | yes | opens the file read-only, `SELECT 1`, busy timeout = check timeout |
| `disk` | always | no | free space of `AGENTWATCH_HEALTH_DISK_PATH` >= `AGENTWATCH_HEALTH_DISK_MIN_FREE_MB` |
| `gemini` | `AGENTWATCH_HEALTH_GEMINI` `auto` (google-genai installed or a key set), `key`, `live` | no | an API key is configured; `live`: `models.get` through the SDK, cached for `AGENTWATCH_HEALTH_GEMINI_TTL` |
| `chromadb` | `AGENTWATCH_HEALTH_CHROMA_URL` set and chromadb installed | no | `HttpClient(...).heartbeat()` |
| `http:<host>` / name | `AGENTWATCH_HEALTH_HTTP_URLS` | yes | GET, healthy on 2xx/3xx |

Built-ins are readiness checks; startup checks are the ones you declare
(``@health_check(startup=True, ...)``).
"""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from agentwatch.distro._diagnostics import warn_once
from agentwatch.web.checks import DEGRADED, Check, register, unregister
from agentwatch.web.config import WebSettings

GEMINI_KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BUILTIN_NAMES: set[str] = set()


def sqlite_check(path: str, timeout: float):
    def sqlite() -> None:
        uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
        try:
            connection.execute("SELECT 1").fetchone()
        finally:
            connection.close()

    return sqlite


def disk_check(path: str, min_free_mb: float):
    def disk():
        usage = shutil.disk_usage(path)
        free_mb = usage.free / (1024 * 1024)
        if free_mb < min_free_mb:
            raise RuntimeError(f"{free_mb:.0f} MiB free on {path!r}, below {min_free_mb:g} MiB")

    return disk


def _gemini_key() -> str | None:
    for name in GEMINI_KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def gemini_check(live: bool, model: str):
    def gemini():
        key = _gemini_key()
        if key is None:
            raise RuntimeError("no Gemini API key configured (GEMINI_API_KEY or GOOGLE_API_KEY)")
        if not live:
            return None
        from google import genai
        from google.genai import errors

        client = genai.Client(api_key=key)
        try:
            client.models.get(model=model)
        except errors.APIError as error:
            code = getattr(error, "code", None) or 0
            if code in (401, 403):
                raise RuntimeError(f"Gemini API rejected the key (HTTP {code})") from None
            if code >= 500 or code == 429:
                raise RuntimeError(f"Gemini API answered HTTP {code}") from None
            return None  # it answered (e.g. 404 for an unknown model): reachable
        finally:
            try:
                client.close()
            except Exception:  # noqa: BLE001,S110
                pass
        return None

    return gemini


def chroma_check(url: str):
    def chromadb_heartbeat():
        import chromadb  # pyright: ignore[reportMissingImports] - optional: only when chromadb is installed

        parts = urlsplit(url)
        client = chromadb.HttpClient(
            host=parts.hostname or "localhost", port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
        )
        client.heartbeat()

    return chromadb_heartbeat


def without_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@`` and the ``Authorization`` header that carries them instead
    (urllib cannot send userinfo: such a check could never pass, and the URL would show the password)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=hostport)), f"Basic {token}"


def http_check(url: str, timeout: float):
    url, authorization = without_credentials(url)
    headers = {"User-Agent": "agentwatch-health"}
    if authorization:
        headers["Authorization"] = authorization

    def http_dependency():
        request = urllib.request.Request(url, method="GET", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"HTTP {error.code}") from None
        except urllib.error.URLError as error:
            raise RuntimeError(f"unreachable ({error.reason})") from None
        if status >= 400:
            raise RuntimeError(f"HTTP {status}")

    return http_dependency


def register_builtins(s: WebSettings) -> list[str]:
    """(Re)register the configured built-in checks; return their names."""
    for name in list(BUILTIN_NAMES):
        unregister(name)
    BUILTIN_NAMES.clear()
    checks: list[Check] = []
    if s.sqlite_path:
        checks.append(Check("sqlite", sqlite_check(s.sqlite_path, s.check_timeout), critical=True))
    checks.append(Check("disk", disk_check(s.disk_path, s.disk_min_free_mb), critical=False))
    gemini_on = s.gemini in ("key", "live") or (
        s.gemini == "auto" and (_gemini_key() is not None or importlib.util.find_spec("google.genai") is not None)
    )
    if gemini_on:
        live = s.gemini == "live"
        checks.append(
            Check("gemini", gemini_check(live, s.gemini_model), critical=False, ttl=s.gemini_ttl if live else None)
        )
    if s.chroma_url:
        if importlib.util.find_spec("chromadb") is None:
            warn_once(
                "health:chromadb",
                f"AGENTWATCH_HEALTH_CHROMA_URL={s.chroma_url!r} is set but chromadb is not installed; "
                "no chromadb check",
            )
        else:
            checks.append(Check("chromadb", chroma_check(s.chroma_url), critical=False))
    for name, url in s.http_urls:
        checks.append(Check(name, http_check(url, s.check_timeout), critical=True))
    for check in checks:
        register(check)
        BUILTIN_NAMES.add(check.name)
    return [c.name for c in checks]


__all__ = ["register_builtins", "DEGRADED"]
