"""What the Gemini instrumentor reads from the environment, read in this one place.

Read once per ``instrument()``, as the GenAI section of the distro's settings (one reader,
:func:`agentwatch.distro.settings.load_genai`): content capture, cost and the price file, the choice
between agentwatch's and the official instrumentation, ``OTEL_SEMCONV_STABILITY_OPT_IN``. Nothing in
this package looks at ``os.environ``.
"""

from __future__ import annotations

from agentwatch._records import Record
from agentwatch.distro.settings import Reader, load_genai
from agentwatch.instrumentors import _genai_common as g


class GeminiConfig(Record):
    """The settings every wrapper of one instrumentor shares."""

    __slots__ = ("choice", "capture", "cost_enabled", "prices", "emit_gen_ai_system")
    choice: str  # AGENTWATCH_GENAI_INSTRUMENTATION: "agentwatch" or "official"
    capture: g.CaptureSettings  # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, AGENTWATCH_GENAI_CONTENT_MAX_CHARS
    cost_enabled: bool  # AGENTWATCH_GENAI_COST
    prices: g.PriceTable  # the bundled table, or AGENTWATCH_GENAI_PRICES over it
    emit_gen_ai_system: bool  # the deprecated gen_ai.system too (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai/dup)

    def __init__(self, choice: str, capture: g.CaptureSettings, cost_enabled: bool, prices: g.PriceTable,
                 emit_gen_ai_system: bool) -> None:
        self._set(choice=choice, capture=capture, cost_enabled=cost_enabled, prices=prices,
                  emit_gen_ai_system=emit_gen_ai_system)


def read_config() -> GeminiConfig:
    """Read the settings (never raises: a bad value warns once and falls back to its default)."""
    genai = load_genai(Reader())
    return GeminiConfig(
        choice=genai.instrumentation,
        capture=g.CaptureSettings(genai.capture, genai.content_max_chars),
        cost_enabled=genai.cost,
        prices=g.PriceTable.load() if genai.cost else g.PriceTable({}),
        emit_gen_ai_system="gen_ai/dup" in {part.strip() for part in genai.semconv_opt_in.split(",")},
    )
