"""agentwatch's OpenTelemetry pipeline: distro, configurator, settings, exporters.

Nothing here imports ``agentwatch.instrumentors`` or ``agentwatch.web``.
"""

from agentwatch.distro.configurator import AgentwatchConfigurator, pipeline, setup
from agentwatch.distro.distro import AgentwatchDistro

__all__ = ["AgentwatchConfigurator", "AgentwatchDistro", "pipeline", "setup"]
