"""One typed settings object, read once from the environment, never raising.

A bad value costs only that value: it is replaced by the default and one
warning line names the variable, the value and what was used instead.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from agentwatch._records import Fields, field
from agentwatch.distro import endpoints
from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.scrub.hint_store import default_directory
from agentwatch.distro.scrub.rules import (
    DEFAULT_KEEP,
    DETECTOR_ALIASES,
    DETECTORS,
    parse_extra_patterns,
    parse_keep,
    parse_key_patterns,
)

PROTOCOLS = ev.PROTOCOLS
_CATALOGUE_DEFAULT: Any = object()
SIGNALS = ("traces", "metrics", "logs")
_LOCAL_DEFAULTS = {
    "traces": ["agentwatch_file"],
    "metrics": ["agentwatch_file", "prometheus"],
    "logs": ["agentwatch_file"],
}
DEFAULT_PROTOCOL: str = ev.BY_NAME[ev.OTEL_EXPORTER_OTLP_PROTOCOL].default
_MIB = 1024 * 1024
_LAUNCHERS = {"uvicorn", "gunicorn", "hypercorn", "fastapi", "granian", "daphne"}


def _from_catalogue(name: str) -> Any:
    """A settings field whose default is the catalogue's (the default is written once, there)."""
    default = ev.BY_NAME[name].default
    return field(default_factory=lambda: default) if isinstance(default, (list, dict)) else field(default=default)


class WebSettings(Fields):
    """What the web layer (agentwatch.web: health endpoints, error handlers, drain) reads."""

    health_enabled: bool = _from_catalogue(ev.AGENTWATCH_HEALTH_ENABLED)
    prefix: str = _from_catalogue(ev.AGENTWATCH_HEALTH_PREFIX)
    check_timeout: float = _from_catalogue(ev.AGENTWATCH_HEALTH_CHECK_TIMEOUT)
    cache_ttl: float = _from_catalogue(ev.AGENTWATCH_HEALTH_CACHE_TTL)
    critical: list[str] | None = None  # None: each check's own default
    sqlite_path: str | None = _from_catalogue(ev.AGENTWATCH_HEALTH_SQLITE_PATH)
    disk_path: str = _from_catalogue(ev.AGENTWATCH_HEALTH_DISK_PATH)
    disk_min_free_mb: float = _from_catalogue(ev.AGENTWATCH_HEALTH_DISK_MIN_FREE_MB)
    gemini: str = _from_catalogue(ev.AGENTWATCH_HEALTH_GEMINI)
    gemini_ttl: float = _from_catalogue(ev.AGENTWATCH_HEALTH_GEMINI_TTL)
    gemini_model: str = _from_catalogue(ev.AGENTWATCH_HEALTH_GEMINI_MODEL)
    chroma_url: str | None = _from_catalogue(ev.AGENTWATCH_HEALTH_CHROMA_URL)
    http_urls: list[tuple[str, str]] = field(default_factory=list)
    startup_retries: int = _from_catalogue(ev.AGENTWATCH_HEALTH_STARTUP_RETRIES)
    startup_backoff: float = _from_catalogue(ev.AGENTWATCH_HEALTH_STARTUP_BACKOFF)
    drain_delay: float = _from_catalogue(ev.AGENTWATCH_DRAIN_DELAY)
    error_handlers: bool = _from_catalogue(ev.AGENTWATCH_ERROR_HANDLERS)
    error_detail: bool = _from_catalogue(ev.AGENTWATCH_ERROR_DETAIL)
    details: str = _from_catalogue(ev.AGENTWATCH_HEALTH_DETAILS)
    token: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log line
    propagate_to: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_PROPAGATE_TO)
    baggage_keys: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_BAGGAGE_KEYS)
    security_headers: tuple[str, ...] = ()  # AGENTWATCH_SECURITY_HEADERS, checked items (empty: off)
    security_csp: str | None = _from_catalogue(ev.AGENTWATCH_SECURITY_CSP)
    security_hsts: str = _from_catalogue(ev.AGENTWATCH_SECURITY_HSTS)


#: The items of AGENTWATCH_SECURITY_HEADERS (agentwatch.web.security_headers gives them their headers).
SECURITY_HEADER_ITEMS = ("on", "off", "nosniff", "frame", "referrer", "hsts", "hsts-always", "csp")
_SECURITY_SYNONYMS = {word: "on" for word in ev.TRUE_WORDS} | {word: "off" for word in ev.FALSE_WORDS}


def _security_items(reader: Reader) -> tuple[str, ...]:
    """``AGENTWATCH_SECURITY_HEADERS``: known items (``true``/``false`` words mean ``on``/``off``); an unknown
    one is said once and left out."""
    kept: list[str] = []
    for item in reader.read(ev.AGENTWATCH_SECURITY_HEADERS):
        item = _SECURITY_SYNONYMS.get(item, item)
        if item in SECURITY_HEADER_ITEMS:
            kept.append(item)
        else:
            warn_once(f"config:{ev.AGENTWATCH_SECURITY_HEADERS}:{item}",
                      f"{ev.AGENTWATCH_SECURITY_HEADERS} item {item!r} is not one of {', '.join(SECURITY_HEADER_ITEMS)}; "
                      "it is left out")
    return tuple(kept)


def _header_value(reader: Reader, name: str) -> str | None:
    """A header value from ``name``: printable Latin-1 only (a line break would inject headers); else the default."""
    value = reader.read(name)
    if value is None:
        return None
    if all(" " <= char <= "~" or "\xa0" <= char <= "\xff" or char == "\t" for char in value):
        return value
    default = ev.BY_NAME[name].default
    reader._bad(name, value, "a header value (printable Latin-1, no line breaks)", default)
    return default


_PREFIX = re.compile(r"(/[A-Za-z0-9._~\-]+)+")


def health_prefix(reader: Reader) -> str:
    """``AGENTWATCH_HEALTH_PREFIX`` as ``/a/b`` (slashes at either end optional); a bad value warns once."""
    default = ev.BY_NAME[ev.AGENTWATCH_HEALTH_PREFIX].default
    value = reader.raw(ev.AGENTWATCH_HEALTH_PREFIX)
    if value is None:
        reader._default(ev.AGENTWATCH_HEALTH_PREFIX)
        return default
    candidate = "/" + value.strip("/")
    if _PREFIX.fullmatch(candidate):
        reader._ok(ev.AGENTWATCH_HEALTH_PREFIX)
        return candidate
    reader._bad(ev.AGENTWATCH_HEALTH_PREFIX, value, "a URL path such as /health or /ops/health", default)
    return default


def _http_urls(value: str | None) -> list[tuple[str, str]]:
    """``AGENTWATCH_HEALTH_HTTP_URLS``: ``[name=]http(s)://...`` items; a bad one is said and skipped."""
    urls = []
    for item in ev.Names(lower=False).parse(value or ""):
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


_HOST_PATTERN = re.compile(r"[a-z0-9*.:\[\]/_-]+")


def _host_patterns(reader: Reader) -> tuple[str, ...]:
    """``AGENTWATCH_PROPAGATE_TO``: host globs, names, CIDRs, ``private``, ``none``, ``*``; an item that can
    be none of these is said once and left out (narrower, never wider)."""
    kept = []
    for item in reader.read(ev.AGENTWATCH_PROPAGATE_TO):
        if _HOST_PATTERN.fullmatch(item):
            kept.append(item)
        else:
            warn_once(f"config:{ev.AGENTWATCH_PROPAGATE_TO}:{item}",
                      f"{ev.AGENTWATCH_PROPAGATE_TO} item {item!r} is not a host name, glob or CIDR; it is left out")
    return tuple(kept)


def load_web(reader: Reader) -> WebSettings:
    """The web section: every variable through the reader (same accepted values, same warning lines)."""
    s = WebSettings()
    s.health_enabled = reader.read(ev.AGENTWATCH_HEALTH_ENABLED)
    s.prefix = health_prefix(reader)
    s.check_timeout = reader.read(ev.AGENTWATCH_HEALTH_CHECK_TIMEOUT)
    s.cache_ttl = reader.read(ev.AGENTWATCH_HEALTH_CACHE_TTL)
    critical = reader.read(ev.AGENTWATCH_HEALTH_CRITICAL)
    if reader.raw(ev.AGENTWATCH_HEALTH_CRITICAL) is not None:
        s.critical = list(critical)
    s.sqlite_path = reader.read(ev.AGENTWATCH_HEALTH_SQLITE_PATH)
    s.disk_path = reader.read(ev.AGENTWATCH_HEALTH_DISK_PATH)
    s.disk_min_free_mb = reader.read(ev.AGENTWATCH_HEALTH_DISK_MIN_FREE_MB)
    s.gemini = reader.read(ev.AGENTWATCH_HEALTH_GEMINI)
    s.gemini_ttl = reader.read(ev.AGENTWATCH_HEALTH_GEMINI_TTL)
    s.gemini_model = reader.read(ev.AGENTWATCH_HEALTH_GEMINI_MODEL)
    s.chroma_url = reader.read(ev.AGENTWATCH_HEALTH_CHROMA_URL)
    s.http_urls = _http_urls(reader.read(ev.AGENTWATCH_HEALTH_HTTP_URLS))
    s.startup_retries = reader.read(ev.AGENTWATCH_HEALTH_STARTUP_RETRIES)
    s.startup_backoff = reader.read(ev.AGENTWATCH_HEALTH_STARTUP_BACKOFF)
    s.drain_delay = reader.read(ev.AGENTWATCH_DRAIN_DELAY)
    s.error_handlers = reader.read(ev.AGENTWATCH_ERROR_HANDLERS)
    s.error_detail = reader.read(ev.AGENTWATCH_ERROR_DETAIL)
    s.details = reader.read(ev.AGENTWATCH_HEALTH_DETAILS)
    s.token = reader.read(ev.AGENTWATCH_HEALTH_TOKEN) or None
    s.propagate_to = _host_patterns(reader)
    s.baggage_keys = reader.read(ev.AGENTWATCH_BAGGAGE_KEYS)
    s.security_headers = _security_items(reader)
    s.security_csp = _header_value(reader, ev.AGENTWATCH_SECURITY_CSP)
    s.security_hsts = _header_value(reader, ev.AGENTWATCH_SECURITY_HSTS) or ev.BY_NAME[ev.AGENTWATCH_SECURITY_HSTS].default
    return s


class ScrubSettings(Fields):
    """What the scrubber (agentwatch.distro.scrub) is built from."""

    enabled: bool = _from_catalogue(ev.AGENTWATCH_SCRUB)
    disabled_detectors: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_SCRUB_DISABLED_DETECTORS)
    extra_patterns: tuple[tuple[str, str], ...] = ()  # AGENTWATCH_SCRUB_EXTRA_PATTERNS, parsed
    extra_keys: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_SCRUB_EXTRA_KEYS)
    engine: str = _from_catalogue(ev.AGENTWATCH_SCRUB_ENGINE)
    # AGENTWATCH_CACHE_DIR resolved: where the hint engine's compiled database is kept (None: nowhere).
    cache_dir: str | None = field(default_factory=default_directory)  # the user's cache directory, from XDG_CACHE_HOME / HOME
    # The keep list (rules.DEFAULT_KEEP adjusted by AGENTWATCH_SCRUB_KEEP_ATTRIBUTES): key -> (detectors off, peer).
    keep: dict[str, tuple[frozenset[str], bool]] = field(default_factory=lambda: dict(DEFAULT_KEEP))
    not_secret_keys: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_SCRUB_NOT_SECRET_KEYS)
    # OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT, applied by the scrubber after scrubbing (scrub/limits.py).
    attribute_length: int | None = None
    span_attribute_length: int | None = None
    log_attribute_length: int | None = _from_catalogue(ev.AGENTWATCH_LOG_BODY_MAX_CHARS)  # bounded like a body when unset
    log_body_length: int | None = _from_catalogue(ev.AGENTWATCH_LOG_BODY_MAX_CHARS)


class GenAISettings(Fields):
    """What the GenAI (Gemini) instrumentation reads."""

    capture: str = _from_catalogue(ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
    content_max_chars: int = _from_catalogue(ev.AGENTWATCH_GENAI_CONTENT_MAX_CHARS)
    prices_path: str | None = _from_catalogue(ev.AGENTWATCH_GENAI_PRICES)
    cost: bool = _from_catalogue(ev.AGENTWATCH_GENAI_COST)
    instrumentation: str = _from_catalogue(ev.AGENTWATCH_GENAI_INSTRUMENTATION)
    semconv_opt_in: str = _from_catalogue(ev.OTEL_SEMCONV_STABILITY_OPT_IN)


def read_capture(reader: Reader) -> tuple[str, int]:
    """The content-capture mode and size limit (the two variables the agent roles read per call);
    ``true``/``false`` as a mode is read as the older conventions meant it, with one note line."""
    name = ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
    mode = reader.read(name)
    raw = reader.raw(name)
    if raw is not None and raw.lower() in ev.TRUE_WORDS:
        warn_once(
            f"config:{name}:bool",
            f"{name}={raw!r}: the current GenAI conventions take NO_CONTENT, SPAN_ONLY, EVENT_ONLY or "
            f"SPAN_AND_EVENT; reading {raw!r} as SPAN_ONLY",
            level=logging.INFO,
        )
    return mode, reader.read(ev.AGENTWATCH_GENAI_CONTENT_MAX_CHARS)


_capture_by_raw: dict[tuple[str | None, str | None], tuple[str, int]] = {}


def current_capture() -> tuple[str, int]:
    """:func:`read_capture` of the process environment as it is now, for per-call readers: the two raw
    values are looked up on every call (so a change takes effect at once), parsed once per distinct pair."""
    raw = (os.environ.get(ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT),
           os.environ.get(ev.AGENTWATCH_GENAI_CONTENT_MAX_CHARS))
    parsed = _capture_by_raw.get(raw)
    if parsed is None:
        parsed = read_capture(Reader())
        if len(_capture_by_raw) > 64:
            _capture_by_raw.clear()
        _capture_by_raw[raw] = parsed
    return parsed


def load_genai(reader: Reader) -> GenAISettings:
    """The GenAI section, every variable through the reader."""
    s = GenAISettings()
    s.capture, s.content_max_chars = read_capture(reader)
    s.prices_path = reader.read(ev.AGENTWATCH_GENAI_PRICES)
    s.cost = reader.read(ev.AGENTWATCH_GENAI_COST)
    s.instrumentation = reader.read(ev.AGENTWATCH_GENAI_INSTRUMENTATION)
    s.semconv_opt_in = reader.read(ev.OTEL_SEMCONV_STABILITY_OPT_IN)
    return s


class AgentSettings(Fields):
    """What the agent instrumentors (intent, rag, planner/critic, chromadb) read."""

    intent_targets: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_INTENT_TARGETS)
    rag_targets: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_RAG_TARGETS)
    planner_targets: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_PLANNER_TARGETS)
    critic_targets: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_CRITIC_TARGETS)
    intent_extractor: str | None = _from_catalogue(ev.AGENTWATCH_INTENT_EXTRACTOR)
    rag_extractor: str | None = _from_catalogue(ev.AGENTWATCH_RAG_EXTRACTOR)
    critic_extractor: str | None = _from_catalogue(ev.AGENTWATCH_CRITIC_EXTRACTOR)
    intent_max_distinct: int = _from_catalogue(ev.AGENTWATCH_INTENT_MAX_DISTINCT)
    intent_low_confidence: float = _from_catalogue(ev.AGENTWATCH_INTENT_LOW_CONFIDENCE)
    chromadb_max_collections: int = _from_catalogue(ev.AGENTWATCH_CHROMADB_MAX_COLLECTIONS)
    retry_targets: tuple[str, ...] = _from_catalogue(ev.AGENTWATCH_RETRY_TARGETS)
    resilience_max_names: int = _from_catalogue(ev.AGENTWATCH_RESILIENCE_MAX_NAMES)
    evaluation_span_events: bool = _from_catalogue(ev.AGENTWATCH_EVALUATION_SPAN_EVENTS)


def load_agent(reader: Reader) -> AgentSettings:
    """The agent section: every field is the catalogue variable of the same name, read by its kind."""
    names = {
        "intent_targets": ev.AGENTWATCH_INTENT_TARGETS,
        "rag_targets": ev.AGENTWATCH_RAG_TARGETS,
        "planner_targets": ev.AGENTWATCH_PLANNER_TARGETS,
        "critic_targets": ev.AGENTWATCH_CRITIC_TARGETS,
        "intent_extractor": ev.AGENTWATCH_INTENT_EXTRACTOR,
        "rag_extractor": ev.AGENTWATCH_RAG_EXTRACTOR,
        "critic_extractor": ev.AGENTWATCH_CRITIC_EXTRACTOR,
        "intent_max_distinct": ev.AGENTWATCH_INTENT_MAX_DISTINCT,
        "intent_low_confidence": ev.AGENTWATCH_INTENT_LOW_CONFIDENCE,
        "chromadb_max_collections": ev.AGENTWATCH_CHROMADB_MAX_COLLECTIONS,
        "retry_targets": ev.AGENTWATCH_RETRY_TARGETS,
        "resilience_max_names": ev.AGENTWATCH_RESILIENCE_MAX_NAMES,
        "evaluation_span_events": ev.AGENTWATCH_EVALUATION_SPAN_EVENTS,
    }
    return AgentSettings(**{attribute: reader.read(name) for attribute, name in names.items()})


class Settings(Fields):
    """The effective configuration; ``sources`` says where each value came from."""

    sdk_disabled: bool = _from_catalogue(ev.OTEL_SDK_DISABLED)
    service_name: str = "unknown_service"
    service_version: str | None = _from_catalogue(ev.AGENTWATCH_SERVICE_VERSION)  # None: not known, not sent
    environment: str | None = _from_catalogue(ev.AGENTWATCH_ENVIRONMENT)
    resource_attributes: dict[str, str] = field(default_factory=dict)
    export_mode: str = _from_catalogue(ev.AGENTWATCH_EXPORT)
    exporters: dict[str, list[str]] = field(default_factory=dict)
    protocols: dict[str, str] = field(default_factory=dict)
    # The URL each signal's ``otlp`` exporter is given (validated; a bad value fell back) and its variable.
    otlp_endpoints: dict[str, str] = field(default_factory=dict)
    otlp_endpoint_sources: dict[str, str] = field(default_factory=dict)
    prometheus_host: str = _from_catalogue(ev.OTEL_EXPORTER_PROMETHEUS_HOST)
    prometheus_port: int = _from_catalogue(ev.OTEL_EXPORTER_PROMETHEUS_PORT)
    file_dir: str = _from_catalogue(ev.AGENTWATCH_FILE_DIR)
    file_max_bytes: int = int(ev.BY_NAME[ev.AGENTWATCH_FILE_MAX_MB].default * _MIB)
    endpoint_check: bool = _from_catalogue(ev.AGENTWATCH_ENDPOINT_CHECK)
    asgi_message_spans: bool = _from_catalogue(ev.AGENTWATCH_ASGI_MESSAGE_SPANS)
    server_layer: str = _from_catalogue(ev.AGENTWATCH_SERVER_LAYER)
    client_layer: str = _from_catalogue(ev.AGENTWATCH_CLIENT_LAYER)
    lean_spans: bool = _from_catalogue(ev.AGENTWATCH_LEAN_SPANS)
    shutdown_timeout: float = _from_catalogue(ev.AGENTWATCH_SHUTDOWN_TIMEOUT)
    scrub: ScrubSettings = field(default_factory=ScrubSettings)
    log_format: str = _from_catalogue(ev.AGENTWATCH_LOG_FORMAT)
    log_scrub_console: bool = _from_catalogue(ev.AGENTWATCH_LOG_SCRUB_CONSOLE)
    log_export_level: str = _from_catalogue(ev.AGENTWATCH_LOG_EXPORT_LEVEL)
    # Read by the logging instrumentation and the SDK; here so a bad value is said once, like every other.
    log_sdk_handler: bool = _from_catalogue(ev.OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED)
    log_correlation: bool = _from_catalogue(ev.OTEL_PYTHON_LOG_CORRELATION)
    strict: bool = _from_catalogue(ev.AGENTWATCH_STRICT)
    lean_sdk: bool = _from_catalogue(ev.AGENTWATCH_LEAN_SDK)
    web: WebSettings = field(default_factory=WebSettings)
    genai: GenAISettings = field(default_factory=GenAISettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    sources: dict[str, str] = field(default_factory=dict)


class Reader:
    """The one reader of agentwatch's configuration: reads variables from one mapping by their catalogue
    entry (:mod:`agentwatch.distro.environment_variables`: typed default + parser), recording the source of
    each value. A bad value warns once (naming the variable, the value and what is used instead) and the
    default is used; it never raises."""

    def __init__(self, environ: Mapping[str, str] | None = None, sources: dict[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.sources = {} if sources is None else sources

    def read(self, name: str, default: Any = _CATALOGUE_DEFAULT) -> Any:
        """The value of catalogued variable ``name``, parsed by its kind; its default (or ``default``)
        when unset or invalid."""
        kind = ev.BY_NAME[name].kind
        fallback = kind.default if default is _CATALOGUE_DEFAULT else default
        value = self.raw(name)
        if value is None:
            self._default(name)
            return fallback
        try:
            parsed = kind.parse(value)
        except ev.Invalid as error:
            self._bad(name, value, str(error), fallback)
            return fallback
        self._ok(name)
        return parsed

    def raw(self, name: str) -> str | None:
        """The stripped value, or None when unset or blank; records nothing."""
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _bad(self, name: str, value: str | None, expected: str, used: object) -> None:
        warn_once(
            f"config:{name}",
            f"{name}={value!r} is not {expected}; using {used!r} instead",
        )
        self.sources[name] = f"default (invalid value {value!r} ignored)"

    def _ok(self, name: str) -> None:
        self.sources[name] = "environment"

    def _default(self, name: str) -> None:
        self.sources.setdefault(name, "default")

    def names(self, name: str, lower: bool = True) -> list[str] | None:
        """The items of a comma list (stripped, blanks dropped, lower-cased unless ``lower=False``), or None
        when unset; records no source (the caller knows whether the list is good)."""
        value = self.raw(name)
        if value is None:
            return None
        return list(ev.Names(lower=lower).parse(value))


def cache_directory(reader: Reader) -> str | None:
    """``AGENTWATCH_CACHE_DIR`` resolved: an absolute path, the user's cache directory when unset (or
    relative: warned once), ``None`` for ``off`` (or without a home directory)."""
    name = ev.AGENTWATCH_CACHE_DIR
    value = reader.raw(name)
    if value is None:
        reader._default(name)
        return default_directory()
    if value.lower() in ev.FALSE_WORDS:
        reader._ok(name)
        return None
    if not os.path.isabs(value):
        default = default_directory()
        reader._bad(name, value, "an absolute path or `off`", default)
        return default
    reader._ok(name)
    return value


def disabled_instrumentations(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Entry-point names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (``*`` = all, as upstream reads it)."""
    raw = (os.environ if environ is None else environ).get(ev.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS) or ""
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def is_instrumentation_disabled(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``opentelemetry-instrument`` skips the entry point ``name`` (listed, or ``*``)."""
    disabled = disabled_instrumentations(environ)
    return "*" in disabled or name in disabled


def parse_resource_attributes(raw: str) -> tuple[dict[str, str], list[str]]:
    """Parse ``k=v,k2=v2`` (W3C baggage-like, values percent-decoded); return the pairs and the bad items."""
    attributes: dict[str, str] = {}
    bad: list[str] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            bad.append(item)
            continue
        attributes[key.strip()] = unquote(value.strip())
    return attributes, bad


def default_service_name(argv: list[str] | None = None) -> str:
    """A sensible ``service.name`` from the program: ``app.py`` -> ``app``, ``uvicorn main:app`` -> ``main``."""
    argv = list(sys.argv if argv is None else argv)
    if not argv or not argv[0] or argv[0] == "-c":
        return "unknown_service:python"
    program = os.path.basename(argv[0])
    if program == "__main__.py":  # python -m package
        program = os.path.basename(os.path.dirname(argv[0])) or program
    stem = program[:-3] if program.endswith(".py") else program
    if stem in _LAUNCHERS:
        for arg in argv[1:]:
            if arg.startswith("-") or arg in {"run", "dev"}:
                continue
            if ":" in arg:  # uvicorn main:app / gunicorn pkg.module:app
                module = arg.split(":", 1)[0]
                return module.rsplit(".", 1)[-1] or stem
            if arg.endswith(".py"):  # fastapi run app.py
                return os.path.basename(arg)[:-3]
        return stem
    return stem or "unknown_service:python"


def _exporter_list(reader: Reader, name: str, default: list[str]) -> list[str]:
    names = reader.names(name)
    if names is None:
        reader.sources[name] = "default (AGENTWATCH_EXPORT)"
        return list(default)
    if not names:
        reader._bad(name, reader.raw(name), "a comma list of exporter names", ",".join(default))
        return list(default)
    reader._ok(name)
    return names


def load_settings(environ: Mapping[str, str] | None = None, argv: list[str] | None = None) -> Settings:
    """Read every variable once. Never raises; a bad value warns once and falls back."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    reader = Reader(environ, settings.sources)

    settings.sdk_disabled = reader.read(ev.OTEL_SDK_DISABLED)

    raw_attributes = reader.raw(ev.OTEL_RESOURCE_ATTRIBUTES)
    if raw_attributes is not None:
        attributes, bad = parse_resource_attributes(raw_attributes)
        if bad:
            warn_once(
                f"config:{ev.OTEL_RESOURCE_ATTRIBUTES}",
                f"{ev.OTEL_RESOURCE_ATTRIBUTES}={raw_attributes!r} has unparsable items {bad!r} "
                "(expected key=value); using the other attributes "
                f"{attributes!r} instead",
            )
        settings.resource_attributes = attributes
        settings.sources[ev.OTEL_RESOURCE_ATTRIBUTES] = "environment"

    settings.service_name = reader.read(ev.OTEL_SERVICE_NAME) or settings.resource_attributes.get(
        "service.name", default_service_name(argv)
    )
    settings.service_version = settings.resource_attributes.get("service.version") or reader.read(ev.AGENTWATCH_SERVICE_VERSION)
    settings.environment = settings.resource_attributes.get("deployment.environment.name") or reader.read(ev.AGENTWATCH_ENVIRONMENT)

    settings.export_mode = reader.read(ev.AGENTWATCH_EXPORT)
    for signal in SIGNALS:
        default = ["otlp"] if settings.export_mode == "otlp" else _LOCAL_DEFAULTS[signal]
        settings.exporters[signal] = _exporter_list(reader, f"OTEL_{signal.upper()}_EXPORTER", default)

    general = reader.read(ev.OTEL_EXPORTER_OTLP_PROTOCOL)
    for signal in SIGNALS:
        settings.protocols[signal] = reader.read(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", general)

    _read_otlp_endpoints(reader, settings)

    settings.prometheus_host = reader.read(ev.OTEL_EXPORTER_PROMETHEUS_HOST)
    settings.prometheus_port = reader.read(ev.OTEL_EXPORTER_PROMETHEUS_PORT)
    settings.file_dir = reader.read(ev.AGENTWATCH_FILE_DIR)
    settings.file_max_bytes = int(reader.read(ev.AGENTWATCH_FILE_MAX_MB) * _MIB)
    settings.endpoint_check = reader.read(ev.AGENTWATCH_ENDPOINT_CHECK)
    settings.asgi_message_spans = reader.read(ev.AGENTWATCH_ASGI_MESSAGE_SPANS)
    settings.server_layer = reader.read(ev.AGENTWATCH_SERVER_LAYER)
    settings.client_layer = reader.read(ev.AGENTWATCH_CLIENT_LAYER)
    settings.lean_spans = reader.read(ev.AGENTWATCH_LEAN_SPANS)
    settings.shutdown_timeout = reader.read(ev.AGENTWATCH_SHUTDOWN_TIMEOUT)
    settings.scrub = load_scrub(reader)
    settings.log_format = reader.read(ev.AGENTWATCH_LOG_FORMAT)
    settings.log_scrub_console = reader.read(ev.AGENTWATCH_LOG_SCRUB_CONSOLE)
    settings.log_export_level = reader.read(ev.AGENTWATCH_LOG_EXPORT_LEVEL)
    settings.log_sdk_handler = reader.read(ev.OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED)
    config_file = reader.read(ev.OTEL_CONFIG_FILE)
    if config_file:
        warn_once(
            f"config:{ev.OTEL_CONFIG_FILE}",
            f"{ev.OTEL_CONFIG_FILE}={config_file!r} is not applied: agentwatch builds its pipeline from environment "
            f"variables (scrubbing exporters, resource, local files; see docs/configuration.md), and reads them as "
            f"usual. To use the file instead, run the stock configurator (OTEL_PYTHON_CONFIGURATOR=configurator).",
        )
    settings.log_correlation = reader.read(ev.OTEL_PYTHON_LOG_CORRELATION)
    settings.strict = reader.read(ev.AGENTWATCH_STRICT)
    settings.lean_sdk = reader.read(ev.AGENTWATCH_LEAN_SDK)
    settings.web = load_web(reader)
    settings.genai = load_genai(reader)
    settings.agent = load_agent(reader)
    return settings


def _read_otlp_endpoints(reader: Reader, settings: Settings) -> None:
    """Resolve each signal's OTLP endpoint now, so a bad value warns once, here, like every other variable."""
    names = [endpoints.GENERAL_VARIABLE, *(f"OTEL_EXPORTER_OTLP_{s.upper()}_ENDPOINT" for s in SIGNALS)]
    for name in names:
        if reader.raw(name) is None:
            reader._default(name)
        else:
            reader._ok(name)
    for signal in SIGNALS:
        url, source, problems = endpoints.resolve_otlp_endpoint(signal, settings.protocols[signal], reader.environ)
        for problem in problems:
            warn_once(f"config:{problem.variable}", problem.message())
            reader.sources[problem.variable] = (
                f"ignored (invalid value {problem.value!r}; {problem.used!r} is used)"
                if problem.unusable
                else f"environment, read as {problem.used!r}"
            )
        settings.otlp_endpoints[signal] = url
        settings.otlp_endpoint_sources[signal] = source


def load_scrub(reader: Reader) -> ScrubSettings:
    """The scrub section; detector names are checked against the scrubber's rules (a leaf module)."""
    scrub = ScrubSettings()
    scrub.enabled = reader.read(ev.AGENTWATCH_SCRUB)

    name = ev.AGENTWATCH_SCRUB_DISABLED_DETECTORS
    names = reader.names(name)
    if names is None:
        reader._default(name)
    else:
        known = set(DETECTORS) | set(DETECTOR_ALIASES)
        good = tuple(n for n in names if n in known)
        unknown = [n for n in names if n not in known]
        if unknown:
            reader._bad(
                name,
                reader.raw(name),
                f"a comma list of detector names (unknown: {', '.join(unknown)}; known: {', '.join(DETECTORS)})",
                ",".join(good),
            )
        else:
            reader._ok(name)
        scrub.disabled_detectors = good

    name = ev.AGENTWATCH_SCRUB_EXTRA_PATTERNS
    value = reader.raw(name)
    if value is None:
        reader._default(name)
    else:
        pairs, problems = parse_extra_patterns(value)
        if problems:
            used = ";;".join(f"{kind}={regex}" for kind, regex in pairs)
            reader._bad(name, value, "a list of name=regex entries separated by ';;' (" + "; ".join(problems) + ")", used)
        else:
            reader._ok(name)
        scrub.extra_patterns = tuple(pairs)

    name = ev.AGENTWATCH_SCRUB_EXTRA_KEYS
    keys = reader.names(name, lower=False)
    if keys is None:
        reader._default(name)
    else:
        reader._ok(name)
        scrub.extra_keys = tuple(keys)

    scrub.engine = reader.read(ev.AGENTWATCH_SCRUB_ENGINE)
    scrub.cache_dir = cache_directory(reader)

    name = ev.AGENTWATCH_SCRUB_KEEP_ATTRIBUTES
    value = reader.raw(name)
    if value is None:
        reader._default(name)
    else:
        added, removed, problems = parse_keep(value)
        if problems:
            reader._bad(name, value, "a comma list of key=detector+detector or -key entries ("
                        + "; ".join(problems) + ")", ",".join([*added, *(f"-{key}" for key in removed)]))
        else:
            reader._ok(name)
        for key in removed:
            scrub.keep.pop(key, None)
        scrub.keep.update(added)

    name = ev.AGENTWATCH_SCRUB_NOT_SECRET_KEYS
    value = reader.raw(name)
    if value is None:
        reader._default(name)
    else:
        keys, problems = parse_key_patterns(value)
        if problems:
            reader._bad(name, value, "a comma list of attribute keys (" + "; ".join(problems) + ")", ",".join(keys))
        else:
            reader._ok(name)
        scrub.not_secret_keys = tuple(keys)

    scrub.attribute_length = reader.read(ev.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    span = reader.read(ev.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    log = reader.read(ev.OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    scrub.span_attribute_length = scrub.attribute_length if span is None else span
    scrub.log_body_length = reader.read(ev.AGENTWATCH_LOG_BODY_MAX_CHARS) or None  # 0: no cap
    # One log record attribute is bounded like its body unless an OTel limit says otherwise: a huge
    # `extra=` value must not make a record (and its batch) too large either.
    scrub.log_attribute_length = log if log is not None else scrub.attribute_length or scrub.log_body_length
    return scrub


_cached: Settings | None = None


def settings() -> Settings:
    """The process-wide settings, read on first use (warnings are emitted once)."""
    global _cached  # noqa: PLW0603 - one read per process is the point
    if _cached is None:
        _cached = load_settings()
    return _cached


def reset_settings() -> None:
    """Forget the cached settings (tests, and ``agentwatch.configure()`` after env changes)."""
    global _cached  # noqa: PLW0603
    _cached = None
    _capture_by_raw.clear()
