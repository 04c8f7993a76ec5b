"""One typed settings object, read once from the environment, never raising.

A bad value costs only that value: it is replaced by the default and one
warning line names the variable, the value and what was used instead.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import unquote

from agentwatch.distro import endpoints
from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.scrub.rules import DETECTOR_ALIASES, DETECTORS, parse_extra_patterns

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
PROTOCOLS = ("grpc", "http/protobuf")
SIGNALS = ("traces", "metrics", "logs")
_LOCAL_DEFAULTS = {
    "traces": ["otlp_json_file"],
    "metrics": ["otlp_json_file", "prometheus"],
    "logs": ["otlp_json_file"],
}
DEFAULT_PROTOCOL = "http/protobuf"
_LAUNCHERS = {"uvicorn", "gunicorn", "hypercorn", "fastapi", "granian", "daphne"}


@dataclass
class Settings:
    """The effective configuration; ``sources`` says where each value came from."""

    sdk_disabled: bool = False
    service_name: str = "unknown_service"
    service_version: str = "unknown"
    environment: str = "development"
    resource_attributes: dict[str, str] = field(default_factory=dict)
    export_mode: str = "otlp"
    exporters: dict[str, list[str]] = field(default_factory=dict)
    protocols: dict[str, str] = field(default_factory=dict)
    # The URL each signal's ``otlp`` exporter is given (validated; a bad value fell back) and its variable.
    otlp_endpoints: dict[str, str] = field(default_factory=dict)
    otlp_endpoint_sources: dict[str, str] = field(default_factory=dict)
    prometheus_host: str = "localhost"
    prometheus_port: int = 9464
    file_dir: str = "agentwatch-data"
    file_max_bytes: int = 64 * 1024 * 1024
    endpoint_check: bool = True
    asgi_message_spans: bool = False
    shutdown_timeout: float = 1.5
    scrub: bool = True
    scrub_disabled_detectors: tuple[str, ...] = ()
    scrub_extra_patterns: tuple[tuple[str, str], ...] = ()
    scrub_extra_keys: tuple[str, ...] = ()
    scrub_engine: str = "auto"
    log_format: str = "off"
    sources: dict[str, str] = field(default_factory=dict)


class _Reader:
    """Reads variables from one mapping, recording the source of each value."""

    def __init__(self, environ: Mapping[str, str], sources: dict[str, str]):
        self.environ = environ
        self.sources = sources

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _bad(self, name: str, value: str, expected: str, used: object) -> None:
        warn_once(
            f"config:{name}",
            f"{name}={value!r} is not {expected}; using {used!r} instead",
        )
        self.sources[name] = f"default (invalid value {value!r} ignored)"

    def _ok(self, name: str) -> None:
        self.sources[name] = "environment"

    def _default(self, name: str) -> None:
        self.sources.setdefault(name, "default")

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            self._default(name)
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            self._ok(name)
            return True
        if lowered in _FALSE:
            self._ok(name)
            return False
        self._bad(name, value, "a boolean (true/false)", default)
        return default

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw(name)
        if value is None:
            self._default(name)
            return default
        try:
            number = float(value)
        except ValueError:
            self._bad(name, value, "a number", default)
            return default
        if not low <= number <= high or number != number:
            self._bad(name, value, f"a number between {low:g} and {high:g}", default)
            return default
        self._ok(name)
        return number

    def port(self, name: str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            self._default(name)
            return default
        if not value.isdigit() or not 0 < int(value) < 65536:
            self._bad(name, value, "a port number (1-65535)", default)
            return default
        self._ok(name)
        return int(value)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            self._default(name)
            return default
        if value.lower() not in allowed:
            self._bad(name, value, "one of " + ", ".join(allowed), default)
            return default
        self._ok(name)
        return value.lower()

    def names(self, name: str, lower: bool = True) -> list[str] | None:
        """The items of a comma list (stripped, blanks dropped, lower-cased unless ``lower=False``), or None
        when unset; records no source (the caller knows whether the list is good)."""
        value = self.raw(name)
        if value is None:
            return None
        return [part.strip().lower() if lower else part.strip() for part in value.split(",") if part.strip()]

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        if value is None:
            self._default(name)
            return default
        self._ok(name)
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


def _exporter_list(reader: _Reader, name: str, default: list[str]) -> list[str]:
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
    reader = _Reader(environ, settings.sources)

    settings.sdk_disabled = reader.boolean(ev.OTEL_SDK_DISABLED, False)

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

    settings.service_name = reader.text(ev.OTEL_SERVICE_NAME, "") or settings.resource_attributes.get(
        "service.name", default_service_name(argv)
    )
    settings.service_version = settings.resource_attributes.get("service.version") or reader.text(
        ev.AGENTWATCH_SERVICE_VERSION, "unknown"
    )
    settings.environment = settings.resource_attributes.get("deployment.environment.name") or reader.text(
        ev.AGENTWATCH_ENVIRONMENT, "development"
    )

    settings.export_mode = reader.choice(ev.AGENTWATCH_EXPORT, "otlp", ("otlp", "local"))
    for signal in SIGNALS:
        default = ["otlp"] if settings.export_mode == "otlp" else _LOCAL_DEFAULTS[signal]
        settings.exporters[signal] = _exporter_list(reader, f"OTEL_{signal.upper()}_EXPORTER", default)

    general = reader.choice(ev.OTEL_EXPORTER_OTLP_PROTOCOL, DEFAULT_PROTOCOL, PROTOCOLS)
    for signal in SIGNALS:
        settings.protocols[signal] = reader.choice(
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", general, PROTOCOLS
        )

    _read_otlp_endpoints(reader, settings)

    settings.prometheus_host = reader.text(ev.OTEL_EXPORTER_PROMETHEUS_HOST, "localhost")
    settings.prometheus_port = reader.port(ev.OTEL_EXPORTER_PROMETHEUS_PORT, 9464)
    settings.file_dir = reader.text(ev.AGENTWATCH_FILE_DIR, "agentwatch-data")
    settings.file_max_bytes = int(reader.number(ev.AGENTWATCH_FILE_MAX_MB, 64, 0.001, 1024 * 1024) * 1024 * 1024)
    settings.endpoint_check = reader.boolean(ev.AGENTWATCH_ENDPOINT_CHECK, True)
    settings.asgi_message_spans = reader.boolean(ev.AGENTWATCH_ASGI_MESSAGE_SPANS, False)
    settings.shutdown_timeout = reader.number(ev.AGENTWATCH_SHUTDOWN_TIMEOUT, 1.5, 0.0, 300.0)
    _read_scrubbing(reader, settings)
    settings.log_format = reader.choice(ev.AGENTWATCH_LOG_FORMAT, "off", ("json", "pretty", "off"))
    return settings


def _read_otlp_endpoints(reader: _Reader, settings: Settings) -> None:
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


def _read_scrubbing(reader: _Reader, settings: Settings) -> None:
    settings.scrub = reader.boolean(ev.AGENTWATCH_SCRUB, True)

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
        settings.scrub_disabled_detectors = good

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
        settings.scrub_extra_patterns = tuple(pairs)

    name = ev.AGENTWATCH_SCRUB_EXTRA_KEYS
    keys = reader.names(name, lower=False)
    if keys is None:
        reader._default(name)
    else:
        reader._ok(name)
        settings.scrub_extra_keys = tuple(keys)

    settings.scrub_engine = reader.choice(ev.AGENTWATCH_SCRUB_ENGINE, "auto", ("auto", "re"))


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
