"""What the Gemini instrumentor reads from the environment, read in this one place.

Read once per ``instrument()``. Content capture, cost and prices come from the readers of
:mod:`agentwatch.instrumentors._genai_common`, the choice between agentwatch's and the official
instrumentation from :mod:`agentwatch.distro.genai_choice`; ``OTEL_SEMCONV_STABILITY_OPT_IN`` is the one
variable read directly. Nothing else in this package looks at ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agentwatch.distro import environment_variables as ev
from agentwatch.instrumentors import _genai_common as g


@dataclass(frozen=True)
class GeminiConfig:
    """The settings every wrapper of one instrumentor shares."""

    choice: str  # AGENTWATCH_GENAI_INSTRUMENTATION: "agentwatch" or "official"
    capture: g.CaptureSettings  # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, AGENTWATCH_GENAI_CONTENT_MAX_CHARS
    cost_enabled: bool  # AGENTWATCH_GENAI_COST
    prices: g.PriceTable  # the bundled table, or AGENTWATCH_GENAI_PRICES over it
    emit_gen_ai_system: bool  # the deprecated gen_ai.system too (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai/dup)


def read_config() -> GeminiConfig:
    """Read the settings (never raises: a bad value warns once and falls back to its default)."""
    choice = g.instrumentation_choice()
    capture = g.capture_settings()
    cost_enabled = g.cost_enabled()
    prices = g.PriceTable.load() if cost_enabled else g.PriceTable({})
    opt_in = os.environ.get(ev.OTEL_SEMCONV_STABILITY_OPT_IN, "")
    return GeminiConfig(
        choice=choice,
        capture=capture,
        cost_enabled=cost_enabled,
        prices=prices,
        emit_gen_ai_system="gen_ai/dup" in {part.strip() for part in opt_in.split(",")},
    )
