"""agentwatch's OpenTelemetry pipeline: distro, configurator, settings, exporters.

Nothing here imports ``agentwatch.instrumentors`` or ``agentwatch.web``. The names below are
imported on first use: ``opentelemetry-instrument`` imports this package for the selection
guard (``selection.py``) whatever distro runs, and a stock-distro start-up should not pay for
agentwatch's configurator and everything it imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what __getattr__ returns, for type checkers
    from agentwatch.distro.configurator import AgentwatchConfigurator, pipeline, setup
    from agentwatch.distro.distro import AgentwatchDistro

__all__ = ["AgentwatchConfigurator", "AgentwatchDistro", "pipeline", "setup"]


def __getattr__(name: str):
    if name in ("AgentwatchConfigurator", "pipeline", "setup"):
        from agentwatch.distro import configurator

        return getattr(configurator, name)
    if name == "AgentwatchDistro":
        from agentwatch.distro.distro import AgentwatchDistro

        return AgentwatchDistro
    raise AttributeError(f"module 'agentwatch.distro' has no attribute {name!r}")
