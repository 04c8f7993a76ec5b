"""Say so, in one line, when another distro or configurator ran instead of agentwatch's.

Registered as an ``opentelemetry_pre_instrument`` hook, which
``opentelemetry-instrument`` runs whatever distro won. Printed straight to
stderr: a winning distro may already have put an OTel handler on the root
logger, which would swallow a logged warning.
"""

from __future__ import annotations

import os
import sys


def _instantiated(base: type) -> str:
    """Which subclass of a singleton base (BaseDistro, _BaseConfigurator) was created, by class path."""
    found = []
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__dict__.get("_instance") is not None:
            found.append(f"{cls.__module__}.{cls.__qualname__}")
    return ", ".join(sorted(found)) or "none"


def _winner() -> str:
    from opentelemetry.instrumentation.distro import BaseDistro
    from opentelemetry.sdk._configuration import _BaseConfigurator

    return f"distro {_instantiated(BaseDistro)}, configurator {_instantiated(_BaseConfigurator)}"


def selection_problem() -> str | None:
    """The one-line message, or None when agentwatch's distro and configurator both ran."""
    # Only what was loaded: a distro or configurator never imported did not run, and importing
    # agentwatch's here would cost a stock-distro start-up the whole pipeline's modules.
    distro = sys.modules.get("agentwatch.distro.distro")
    configurator = sys.modules.get("agentwatch.distro.configurator")
    selected = distro is not None and distro.selected
    if selected and configurator is not None and configurator.pipeline() is not None:
        return None
    chosen = os.environ.get("OTEL_PYTHON_DISTRO")
    chosen_cfg = os.environ.get("OTEL_PYTHON_CONFIGURATOR")
    what = "distro" if not selected else "configurator"
    settings_text = ", ".join(
        f"{name}={value}" for name, value in (("OTEL_PYTHON_DISTRO", chosen), ("OTEL_PYTHON_CONFIGURATOR", chosen_cfg)) if value
    )
    return (
        f"agentwatch: the {what} that ran is not agentwatch's ({_winner()}"
        f"{'; ' + settings_text if settings_text else ''}), so agentwatch's pipeline is not active. "
        "Fix: set OTEL_PYTHON_DISTRO=agentwatch OTEL_PYTHON_CONFIGURATOR=agentwatch "
        "(or unset both to let agentwatch select itself)."
    )


def pre_instrument_guard() -> None:
    try:
        problem = selection_problem()
    except Exception:  # noqa: BLE001 - a diagnostic must not break start-up
        return
    if problem:
        print(problem, file=sys.stderr, flush=True)
