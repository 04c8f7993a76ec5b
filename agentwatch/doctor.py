"""``agentwatch doctor``: the effective configuration, what would load, and whether endpoints answer.

It runs in its own process, so it reports what ``opentelemetry-instrument``
would do with the same environment, using the same code paths as the
distro (settings, exporter resolution, endpoint checks), so the two agree.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.util._importlib_metadata import entry_points

from agentwatch.distro import _diagnostics, endpoints, exporters
from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import hide_credentials
from agentwatch.distro.exporters import resolve_names
from agentwatch.distro.settings import SIGNALS, is_instrumentation_disabled, load_settings
from agentwatch.version import __version__

_SECRET_MARKERS = ("HEADERS", "KEY", "TOKEN", "SECRET", "PASSWORD")


def _mask(name: str, value: str) -> str:
    if any(marker in name for marker in _SECRET_MARKERS):
        if "HEADERS" in name:
            return ",".join(f"{pair.split('=', 1)[0]}=[REDACTED]" for pair in value.split(",") if pair)
        return "[REDACTED]"
    return hide_credentials(value)


def _dist_name(entry_point) -> str:
    dist = getattr(entry_point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "?"


def _flag(lines: list[str], problems: list[str], problem: str, indent: str = "  ") -> None:
    """A mistake a section found: shown in the section, and listed under Problems (a deploy gate fails on it)."""
    lines.append(f"{indent}! {problem}")
    problems.append(problem)


def _selection(environ: Mapping[str, str], problems: list[str]) -> list[str]:
    lines: list[str] = []
    chosen = environ.get(ev.OTEL_PYTHON_DISTRO) or "agentwatch (selected by agentwatch-select.pth)"
    for group in ("opentelemetry_distro", "opentelemetry_configurator"):
        found = [f"{ep.name} ({_dist_name(ep)})" for ep in entry_points(group=group)]
        lines.append(f"  {group}: {', '.join(found) or 'none'}")
    lines.append(f"  under opentelemetry-instrument the distro is: {chosen}")
    configurator = environ.get(ev.OTEL_PYTHON_CONFIGURATOR) or "agentwatch (set by the agentwatch distro)"
    lines.append(f"  the configurator is: {configurator}")
    if environ.get(ev.OTEL_PYTHON_DISTRO, "agentwatch") != "agentwatch":
        _flag(lines, problems, "OTEL_PYTHON_DISTRO names another distro: agentwatch's pipeline will not run")
    names = {ep.name for ep in entry_points(group="opentelemetry_configurator")}
    wanted = environ.get(ev.OTEL_PYTHON_CONFIGURATOR)
    if wanted and wanted not in names:
        _flag(lines, problems, f"OTEL_PYTHON_CONFIGURATOR={wanted!r} matches no configurator: no SDK would be set up")
    return lines


def _instrumentors(environ: Mapping[str, str], sdk_disabled: bool = False) -> list[str]:
    from opentelemetry.instrumentation.auto_instrumentation._load import _EntryPointDistFinder
    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

    from agentwatch.distro.distro import RECORDING_ONLY
    from agentwatch.distro.genai_choice import instrumentation_status
    from agentwatch.distro.genai_choice import is_official_entry_point as genai_is_official

    finder = _EntryPointDistFinder()
    genai = instrumentation_status(environ)
    lines = []
    for entry_point in sorted(entry_points(group="opentelemetry_instrumentor"), key=lambda e: e.name):
        if is_instrumentation_disabled(entry_point.name, environ):
            status = "skipped: disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
        elif sdk_disabled and entry_point.name in RECORDING_ONLY:
            status = "skipped: OTEL_SDK_DISABLED=true (it only records)"
        else:
            try:
                conflict = get_dist_dependency_conflicts(finder.dist_for(entry_point))  # pyright: ignore[reportArgumentType] - None is accepted (no conflict)
                if conflict is None:
                    instrumentor = entry_point.load()()
                    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

                    conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
                status = f"skipped: {conflict}" if conflict else "loads"
                if not conflict and entry_point.name == "sqlite3" and not sdk_disabled:
                    status += " (as agentwatch's AgentwatchSQLite3Instrumentor: adds connection shortcuts)"
                if not conflict and genai_is_official(entry_point) and genai.skip_official:
                    status = (
                        f"skipped: agentwatch's gemini instrumentor is used instead "
                        f"({ev.AGENTWATCH_GENAI_INSTRUMENTATION}=official uses this one)"
                    )
                if not conflict and entry_point.name == "gemini" and genai.used == "official":
                    status += " (steps aside for the methods the official google-genai instrumentation wraps)"
            except ModuleNotFoundError as error:
                status = f"skipped: library not installed ({error.name})"
            except Exception as error:  # noqa: BLE001 - doctor reports, never crashes
                status = f"fails to load: {error!r}"
        lines.append(f"  {entry_point.name:<16} {status}  [{_dist_name(entry_point)}]")
    lines.append(f"  Gemini: {_gemini_line(genai)}")
    return lines


def _gemini_line(genai) -> str:
    """Which Gemini instrumentation runs (the same decision the distro makes at start-up)."""
    described = genai.describe()
    if described is not None:
        return described[1].removeprefix("Gemini: ")
    if genai.used == "agentwatch":
        return "agentwatch's gemini instrumentor (the official opentelemetry-instrumentation-google-genai is not installed)"
    return "no Gemini instrumentation (gemini is disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)"


def _exporters(settings, environ: Mapping[str, str], check: bool, problems: list[str]) -> list[str]:
    lines: list[str] = []
    for signal in SIGNALS:
        resolved = resolve_names(signal, settings)
        lines.append(f"  {signal}: {', '.join(n for n, _ in resolved) or 'none'}")
        for name, target in resolved:
            protocol = exporters.otlp_protocol_of(target)
            if protocol is not None:
                # The same validated URL the exporter is given (a bad value is listed under Problems),
                # for `otlp` and for otlp_proto_grpc / otlp_proto_http named directly.
                endpoint = exporters.otlp_endpoint_for(signal, target, settings, environ) or ""
                if protocol == settings.protocols.get(signal) and signal in settings.otlp_endpoint_sources:
                    source = settings.otlp_endpoint_sources[signal]
                else:
                    source = endpoints.otlp_endpoint(signal, protocol, environ)[1]
                state = ""
                if check and endpoints.host_port(endpoint) is None:
                    state = "(not a TCP address; not checked)"
                elif check:
                    ok, error = endpoints.is_reachable(endpoint)
                    state = "answers" if ok else f"NOT reachable ({error})"
                    if not ok:
                        problems.append(f"endpoint {name} {protocol} -> {endpoint} (from {source}) {state}")
                lines.append(f"    {name} {protocol} -> {endpoint} (from {source}) {state}".rstrip())
                for problem in endpoints.endpoint_mistakes(signal, protocol, endpoint, source, environ):
                    _flag(lines, problems, problem, "    ")
            elif name == "prometheus":
                lines.append(f"    prometheus scrape endpoint on {settings.prometheus_host}:{settings.prometheus_port}/metrics")
            elif target == exporters.FILE_EXPORTER:
                lines.append(f"    files in {os.path.abspath(settings.file_dir)} (bound {settings.file_max_bytes // 1024} KiB per file)")
    return lines


def _scrubber_line(settings) -> str:
    from agentwatch.distro.scrub import scrubber_for

    scrubber = scrubber_for(settings)
    if scrubber is None:
        return "  off (AGENTWATCH_SCRUB=false): telemetry leaves the process unscrubbed"
    if scrubber.engine_name == "hyperscan":
        from agentwatch.distro.scrub.hint_store import directory_problem

        line = "  on; candidates found by one Hyperscan pass per batch (AGENTWATCH_SCRUB_ENGINE=auto)"
        directory = settings.scrub.cache_dir
        if directory is None:
            return line + "; its database compiled at every start (AGENTWATCH_CACHE_DIR=off)"
        problem = directory_problem(directory)
        return line + f"; its compiled database kept in {directory}" + (f", which {problem}" if problem else "")
    why = (
        "AGENTWATCH_SCRUB_ENGINE=re"
        if settings.scrub.engine == "re"
        else "the hyperscan package is not usable here, or an extra key name is not ASCII"
    )
    return f"  on; Python re alone ({why}): same results, slower"


@dataclass
class Diagnosis:
    """What ``agentwatch doctor`` found: the report's sections, and the problems that fail a deploy gate."""

    configuration: list[dict[str, Any]] = field(default_factory=list)
    selection: list[str] = field(default_factory=list)
    instrumentors: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)
    scrubber: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self, show_all: bool = True) -> str:
        out = [f"agentwatch {__version__} on Python {sys.version.split()[0]}", ""]
        shown = [entry for entry in self.configuration if show_all or not entry["default"]]
        title = "Configuration (value <- source):" if show_all else "Configuration, values that are set (value <- source; --all for every default):"
        out += [title] + [f"  {e['name']} = {e['value']}  <- {e['source']}" for e in shown]
        if not shown:
            out.append("  (nothing set: every value is its default)")
        out += ["", "Distro selection:", *self.selection]
        out += ["", "Instrumentors:", *self.instrumentors]
        out += ["", "Exporters:", *self.exporters]
        out += ["", "Scrubber:", self.scrubber]
        out += ["", "Problems:" if self.problems else "Problems: none found"]
        out += [f"  ! {problem}" for problem in self.problems]
        return hide_credentials("\n".join(out))  # endpoints and check URLs appear in several sections

    def as_json(self, show_all: bool = True) -> str:
        document = {
            "agentwatch": __version__, "python": sys.version.split()[0], "ok": self.ok,
            "configuration": [e for e in self.configuration if show_all or not e["default"]],
            "selection": [line.strip() for line in self.selection],
            "instrumentors": [line.strip() for line in self.instrumentors],
            "exporters": [line.strip() for line in self.exporters],
            "scrubber": self.scrubber.strip(), "problems": self.problems,
        }
        return hide_credentials(json.dumps(document, indent=2, ensure_ascii=False))


def diagnose(environ: Mapping[str, str] | None = None, check_endpoints: bool = True) -> Diagnosis:
    """Everything ``agentwatch doctor`` reports, as data."""
    environ = os.environ if environ is None else environ
    before = len(_diagnostics.problems())
    settings = load_settings(environ)
    found = Diagnosis()
    for var in ev.VARIABLES:
        value = environ.get(var.name)
        source = settings.sources.get(var.name, "environment" if value else "default")
        shown = _mask(var.name, value) if value else var.default_text.replace("`", "")
        found.configuration.append({"name": var.name, "value": shown, "source": source, "default": not value})
    known = {v.name for v in ev.VARIABLES}
    for name in sorted(k for k in environ if k.startswith(("OTEL_", "AGENTWATCH_")) and k not in known):
        found.configuration.append({"name": name, "value": _mask(name, environ[name]),
                                    "source": "environment (passed to upstream components)", "default": False})
    flagged: list[str] = []
    found.selection = _selection(environ, flagged)
    found.instrumentors = _instrumentors(environ, settings.sdk_disabled)
    found.exporters = _exporters(settings, environ, check_endpoints, flagged)
    found.scrubber = _scrubber_line(settings)
    said = _diagnostics.problems()[before:]
    found.problems = list(dict.fromkeys(said + flagged))  # a mistake also said at load is listed once
    return found


def run(environ: Mapping[str, str] | None = None, check_endpoints: bool = True, show_all: bool = True) -> str:
    """The doctor's report as text."""
    return diagnose(environ, check_endpoints).text(show_all)
