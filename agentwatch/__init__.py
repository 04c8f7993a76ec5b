"""agentwatch: an OpenTelemetry distro for AI-agent services.

Zero-code use::

    pip install agentwatch
    opentelemetry-instrument python app.py

From code, for apps that cannot use the wrapper (call it before the FastAPI
app is created)::

    import agentwatch
    telemetry = agentwatch.configure(service_name="shop")   # keywords: settings; the environment wins
    ...
    telemetry.force_flush(); telemetry.shutdown()

Agent steps from code (see ``agentwatch.instrumentors.api``)::

    @agentwatch.intent_classifier / @agentwatch.retriever / @agentwatch.planner / @agentwatch.critic
    with agentwatch.retrieval("kb") as step: step.record(documents)

Any other evaluator's result, as the critics' ``gen_ai.evaluation.result`` event::

    agentwatch.record_evaluation("relevance", score=0.82, label="pass")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentwatch.version import __version__

if TYPE_CHECKING:  # what the lazy __getattr__ below returns, for type checkers (they do not run it)
    from agentwatch.instrumentors._agents.evaluation import record_evaluation
    from agentwatch.instrumentors.api import (
        critic,
        critique,
        intent_classification,
        intent_classifier,
        planner,
        planning,
        retrieval,
        retriever,
    )

_AGENT_API = (
    "intent_classifier", "retriever", "planner", "critic",
    "intent_classification", "retrieval", "planning", "critique",
)

__all__ = [
    "Handle", "__version__", "configure",
    "intent_classifier", "retriever", "planner", "critic",
    "intent_classification", "retrieval", "planning", "critique",
    "record_evaluation",
]


def __getattr__(name: str):
    """Agent decorators and context managers, imported on first use (``import agentwatch`` stays cheap)."""
    if name in _AGENT_API:
        from agentwatch.instrumentors import api

        return getattr(api, name)
    if name == "record_evaluation":
        from agentwatch.instrumentors._agents.evaluation import record_evaluation

        return record_evaluation
    raise AttributeError(f"module 'agentwatch' has no attribute {name!r}")


def _variable_for(keyword: str) -> str:
    """The environment variable a ``configure()`` keyword stands for: its name without the ``OTEL_`` /
    ``AGENTWATCH_`` prefix, lower-cased (``service_name`` -> ``OTEL_SERVICE_NAME``, ``log_format`` ->
    ``AGENTWATCH_LOG_FORMAT``). Raises ``TypeError`` for a keyword that names no setting."""
    from agentwatch.distro import environment_variables as ev

    for var in ev.VARIABLES:
        if var.name.removeprefix("OTEL_").removeprefix("AGENTWATCH_").lower() == keyword:
            return var.name
    raise TypeError(f"agentwatch.configure() got an unknown setting {keyword!r} (see docs/configuration.md: "
                    f"a variable's name without OTEL_/AGENTWATCH_, lower-cased)")


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(item) for item in value)
    return str(value)


class Handle:
    """What :func:`configure` returns: flush or shut the pipeline down from code (tests, scripts, workers)."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything buffered now; True if every provider finished in time."""
        from agentwatch.distro.configurator import pipeline

        built = pipeline()
        if built is None:
            return True
        ok = True
        for provider in (built.tracer_provider, built.meter_provider, built.logger_provider):
            if provider is not None:
                try:
                    ok = bool(provider.force_flush(timeout_millis)) and ok
                except Exception:  # noqa: BLE001 - flushing telemetry never breaks the caller
                    ok = False
        return ok

    def shutdown(self, timeout_seconds: float | None = None) -> bool:
        """Flush and shut every provider down (once; also what happens at exit); True if it finished in time."""
        from agentwatch.distro.shutdown import flush_and_shutdown

        return flush_and_shutdown(timeout_seconds)


def configure(**overrides: object) -> Handle:
    """Run the same setup as ``opentelemetry-instrument``: distro defaults, pipeline, instrumentors.

    Keyword arguments are settings, named like their environment variables without the ``OTEL_`` /
    ``AGENTWATCH_`` prefix, lower-cased: ``configure(service_name="shop", export="local",
    log_format="json", exporter_otlp_endpoint="http://collector:4318")``. **The environment wins**: a
    keyword fills in only a variable that is not set, so a deployment can still change what the code
    chose. Lists are given as lists, booleans as booleans. An unknown keyword raises ``TypeError``
    before anything is set up; anything else never raises (problems are one warning line each).

    Idempotent: a second call returns the same handle and changes nothing (said once if it had keywords).
    """
    import os

    from agentwatch.distro import _diagnostics

    variables = {_variable_for(keyword): _as_text(value) for keyword, value in overrides.items()}
    handle = Handle()
    try:
        from opentelemetry.instrumentation.auto_instrumentation._load import _load_instrumentors
        from opentelemetry.instrumentation.version import __version__ as auto_version

        from agentwatch.distro.configurator import pipeline, setup
        from agentwatch.distro.distro import AgentwatchDistro
        from agentwatch.distro.settings import reset_settings

        if pipeline() is not None:
            if variables:
                _diagnostics.warn_once("configure:again", "agentwatch.configure() was called again with settings; "
                                       "the pipeline is already set up, so they are ignored")
            return handle
        for name, value in variables.items():
            os.environ.setdefault(name, value)
        reset_settings()  # read the environment as it now is
        distro = AgentwatchDistro()
        distro.configure()
        setup(auto_instrumentation_version=auto_version)
        _load_instrumentors(distro)
    except Exception as error:  # noqa: BLE001 - never break the app
        _diagnostics.warn_once("configure", f"agentwatch.configure() failed ({error!r}); the app runs without it")
    return handle
