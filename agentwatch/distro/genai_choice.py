"""Which Gemini instrumentation ``opentelemetry-instrument`` runs when two are installed.

agentwatch's own (``agentwatch.instrumentors.gemini``) and the official
opentelemetry-instrumentation-google-genai both wrap ``Models.generate_content``;
loading both would give every call two spans. ``AGENTWATCH_GENAI_INSTRUMENTATION``
picks one (agentwatch's by default). The distro decides here while it loads entry
points, the Gemini instrumentor steps aside by the same decision, and ``agentwatch
doctor`` shows it. Read from package metadata only: nothing here imports an
instrumentor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from agentwatch._records import Record
from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import run
from agentwatch.distro.settings import Reader, is_instrumentation_disabled

OFFICIAL_MODULE = "opentelemetry.instrumentation.google_genai"
OFFICIAL_DIST = "opentelemetry-instrumentation-google-genai"
AGENTWATCH, OFFICIAL = "agentwatch", "official"
_CHOICE_KEY = "genai:instrumentation"


def instrumentation_choice(environ: Mapping[str, str] | None = None) -> str:
    """``AGENTWATCH_GENAI_INSTRUMENTATION``: ``agentwatch`` (default) or ``official`` (never raises)."""
    return Reader(environ).read(ev.AGENTWATCH_GENAI_INSTRUMENTATION)


def is_official_entry_point(entry_point: Any) -> bool:
    """Whether an ``opentelemetry_instrumentor`` entry point is the official google-genai instrumentation."""
    module = str(getattr(entry_point, "value", "") or "").split(":", 1)[0].strip()
    return module == OFFICIAL_MODULE or module.startswith(OFFICIAL_MODULE + ".")


class InstrumentationStatus(Record):
    """Which Gemini instrumentation ``opentelemetry-instrument`` runs, and why (read from package metadata)."""

    __slots__ = ("choice", "official", "official_entry_point", "conflict", "official_disabled", "gemini_disabled")
    choice: str
    official: str | None  # "opentelemetry-instrumentation-google-genai 1.3b0" when installed
    official_entry_point: str | None
    conflict: str | None  # why the loader would not load the official one (version range)
    official_disabled: bool
    gemini_disabled: bool

    def __init__(self, choice: str, official: str | None = None, official_entry_point: str | None = None,
                 conflict: str | None = None, official_disabled: bool = False, gemini_disabled: bool = False) -> None:
        self._set(choice=choice, official=official, official_entry_point=official_entry_point, conflict=conflict,
                  official_disabled=official_disabled, gemini_disabled=gemini_disabled)

    @property
    def official_loadable(self) -> bool:
        return self.official is not None and self.conflict is None and not self.official_disabled

    @property
    def used(self) -> str:
        """``agentwatch``, ``official`` or ``none``: who instruments generate_content / embed_content."""
        if self.choice == OFFICIAL and self.official_loadable:
            return OFFICIAL
        if not self.gemini_disabled:
            return AGENTWATCH
        return OFFICIAL if self.official_loadable else "none"

    @property
    def skip_official(self) -> bool:
        """Whether the distro must not load the official entry point."""
        return self.official is not None and self.used != OFFICIAL

    def describe(self) -> tuple[int, str] | None:
        """(log level, the one line that says which one runs), or None when there is nothing to choose."""
        var = ev.AGENTWATCH_GENAI_INSTRUMENTATION
        disabled = ev.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS
        if self.choice == OFFICIAL and self.used != OFFICIAL:
            if self.official is None:
                why = f"{OFFICIAL_DIST} is not installed"
            elif self.official_disabled:
                why = f"{self.official} is disabled by {disabled}"
            else:
                why = f"opentelemetry-instrument does not load {self.official} ({self.conflict})"
            then = "agentwatch's Gemini instrumentor is used" if self.used == AGENTWATCH else "no Gemini instrumentation runs"
            return logging.WARNING, f"{var}=official, but {why}: {then}"
        if self.official is None:
            return None
        if self.used == OFFICIAL and self.choice == OFFICIAL:
            return logging.INFO, (
                f"Gemini: {var}=official, so {self.official} instruments generate_content and embed_content; "
                "agentwatch's Gemini instrumentor steps aside for them (it keeps count_tokens): one span per call"
            )
        if self.used == OFFICIAL:
            return logging.INFO, f"Gemini: agentwatch's gemini instrumentor is disabled by {disabled}; {self.official} is used"
        if self.used == AGENTWATCH:
            return logging.INFO, (
                f"Gemini: {self.official} is installed too; agentwatch's Gemini instrumentor is used and the official "
                f"one is not loaded, so each call gets one span ({var}=official picks the official one)"
            )
        return logging.WARNING, f"Gemini: no instrumentation runs (gemini is disabled by {disabled} and {self.official} cannot load)"


_status: InstrumentationStatus | None = None


def _conflict_text(conflict: Any) -> str:
    required, found = getattr(conflict, "required", None), getattr(conflict, "found", None)
    if required and found:
        return f"it requires {str(required).split(';', 1)[0].strip()} and {found} is installed"
    return str(conflict)


def instrumentation_status(environ: Mapping[str, str] | None = None) -> InstrumentationStatus:
    """What ``opentelemetry-instrument`` does about Gemini with this environment (cached for the process env)."""
    global _status  # noqa: PLW0603 - computed once per process
    if environ is None and _status is not None:
        return _status
    env = os.environ if environ is None else environ
    choice = instrumentation_choice(env)
    status = InstrumentationStatus(choice, gemini_disabled=is_instrumentation_disabled("gemini", env))
    # Metadata trouble: assume the official one is absent.
    status = run(f"looking for {OFFICIAL_DIST}", _with_official, status, env, default=status,
                 outcome="assuming it is not installed")
    if environ is None:
        _status = status
    return status


def _with_official(status: InstrumentationStatus, env: Mapping[str, str]) -> InstrumentationStatus:
    """``status`` completed with the installed official instrumentation, if there is one."""
    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
    from opentelemetry.util._importlib_metadata import entry_points

    for entry_point in entry_points(group="opentelemetry_instrumentor"):
        if not is_official_entry_point(entry_point):
            continue
        dist = getattr(entry_point, "dist", None)
        conflict = get_dist_dependency_conflicts(dist) if dist is not None else None
        return InstrumentationStatus(
            status.choice,
            f"{dist.name} {dist.version}" if dist is not None else OFFICIAL_DIST,
            entry_point.name,
            _conflict_text(conflict) if conflict else None,
            is_instrumentation_disabled(entry_point.name, env),
            status.gemini_disabled,
        )
    return status


_announced = False


def announce_choice() -> InstrumentationStatus:
    """Say once per process which Gemini instrumentation runs (called by the distro while loading instrumentors)."""
    global _announced  # noqa: PLW0603
    status = instrumentation_status()
    line = status.describe()
    if line is not None:
        warn_once(_CHOICE_KEY, line[1], level=line[0])
        _announced = True
    return status


def choice_announced() -> bool:
    """Whether :func:`announce_choice` already told the user (so a later step-aside need not repeat it)."""
    return _announced
