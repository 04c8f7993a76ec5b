"""agentwatch: an OpenTelemetry distro for AI-agent services.

Zero-code use::

    pip install agentwatch
    opentelemetry-instrument python app.py

From code, for apps that cannot use the wrapper (call it before the FastAPI
app is created)::

    import agentwatch
    agentwatch.configure()

Agent steps from code (see ``agentwatch.instrumentors.api``)::

    @agentwatch.intent_classifier / @agentwatch.retriever / @agentwatch.planner / @agentwatch.critic
    with agentwatch.retrieval("kb") as step: step.record(documents)
"""

from __future__ import annotations

from agentwatch.version import __version__

_AGENT_API = (
    "intent_classifier", "retriever", "planner", "critic",
    "intent_classification", "retrieval", "planning", "critique",
)

__all__ = ["__version__", "configure", *_AGENT_API]


def __getattr__(name: str):
    """Agent decorators and context managers, imported on first use (``import agentwatch`` stays cheap)."""
    if name in _AGENT_API:
        from agentwatch.instrumentors import api

        return getattr(api, name)
    raise AttributeError(f"module 'agentwatch' has no attribute {name!r}")


def configure() -> None:
    """Run the same setup as ``opentelemetry-instrument``: distro defaults, pipeline, instrumentors.

    Idempotent and never raises; problems are reported as one warning line each.
    """
    from agentwatch.distro import _diagnostics

    try:
        from opentelemetry.instrumentation.auto_instrumentation._load import _load_instrumentors
        from opentelemetry.instrumentation.version import __version__ as auto_version

        from agentwatch.distro.configurator import pipeline, setup
        from agentwatch.distro.distro import AgentwatchDistro

        if pipeline() is not None:
            return
        distro = AgentwatchDistro()
        distro.configure()
        setup(auto_instrumentation_version=auto_version)
        _load_instrumentors(distro)
    except Exception as error:  # noqa: BLE001 - never break the app
        _diagnostics.warn_once("configure", f"agentwatch.configure() failed ({error!r}); the app runs without it")
