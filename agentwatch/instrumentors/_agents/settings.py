"""Settings of the agent instrumentors: content capture and the off switches.

Content capture follows the Gemini instrumentor exactly (:mod:`agentwatch.instrumentors._genai_common`),
so one variable turns query texts, document contents and explanations on for every instrumentor.
"""

from __future__ import annotations

import os

from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.settings import _Reader, is_instrumentation_disabled
from agentwatch.instrumentors import _genai_common as g

# ================================================================ interim env parsers
# Private parsers for this family's AGENTWATCH_* values (targets, extractors, the intent and
# chromadb bounds). They stay here, and only here, until one configuration reader replaces them;
# a bad value warns once naming the variable, the value and the fallback.


def env_text(name: str) -> str | None:
    """The variable's value, stripped; None when unset or blank."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_int(name: str, default: int, low: int, high: int) -> int:
    """A whole number in ``[low, high]``; ``default`` (after one warning) otherwise."""
    value = env_text(name)
    if value is None:
        return default
    try:
        number = int(value)
        if not low <= number <= high:
            raise ValueError
    except ValueError:
        warn_once(f"config:{name}", f"{name}={value!r} is not a whole number between {low} and {high}; using {default} instead")
        return default
    return number


def env_float(name: str, default: float, low: float, high: float) -> float:
    """A number in ``[low, high]``; ``default`` (after one warning) otherwise."""
    value = env_text(name)
    if value is None:
        return default
    try:
        number = float(value)
        if not low <= number <= high:  # also rejects nan
            raise ValueError
    except ValueError:
        warn_once(f"config:{name}", f"{name}={value!r} is not a number between {low:g} and {high:g}; using {default:g} instead")
        return default
    return number


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
    if _Reader(os.environ, {}).boolean(ev.OTEL_SDK_DISABLED, False):
        return True
    return is_instrumentation_disabled(entry_point)
