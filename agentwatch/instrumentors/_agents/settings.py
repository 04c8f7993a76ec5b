"""Settings of the agent instrumentors: their section of the one settings object, content capture and
the off switches.

Content capture follows the Gemini instrumentor exactly (:mod:`agentwatch.instrumentors._genai_common`),
so one variable turns query texts, document contents and explanations on for every instrumentor.
"""

from __future__ import annotations

from agentwatch.distro.settings import AgentSettings, Reader, is_instrumentation_disabled, load_agent, settings
from agentwatch.instrumentors import _genai_common as g


def agent_settings() -> AgentSettings:
    """The agent section, read by the distro's one reader when an instrumentor is instrumented (once
    per process under ``opentelemetry-instrument``; again when a test instruments anew)."""
    return load_agent(Reader())


# ==================================================================== content capture


def capture_content() -> g.CaptureSettings | None:
    """The content-capture settings when query text / document content / explanations go on spans, else None.

    Read once per call, exactly as the Gemini instrumentor reads them
    (:func:`agentwatch.instrumentors._genai_common.capture_settings`): ``SPAN_ONLY`` /
    ``SPAN_AND_EVENT`` (or ``true``) capture, anything else does not.
    """
    settings = g.capture_settings()
    return settings if settings.on_span else None


def clip(text: str, settings: g.CaptureSettings | None = None) -> str:
    """Captured text as GenAI content is recorded: scrubbed, then cut to ``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``.

    Pass the ``settings`` of :func:`capture_content` to avoid reading the environment again.
    """
    max_chars = (settings or g.capture_settings()).max_chars
    return g.scrub_text(text, max_chars)


# ======================================================================= off switches


def telemetry_disabled(entry_point: str) -> bool:
    """True when the SDK is off or this instrumentor is listed in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS."""
    return settings().sdk_disabled or is_instrumentation_disabled(entry_point)
