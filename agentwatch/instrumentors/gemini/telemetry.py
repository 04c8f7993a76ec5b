"""The tracer, instruments, event logger and settings shared by every wrapper of one instrumentor."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import get_logger
from opentelemetry.metrics import get_meter

from agentwatch import semconv as sc
from agentwatch.distro._diagnostics import warn_once
from agentwatch.instrumentors import _genai_common as g
from agentwatch.instrumentors.gemini.config import read_config
from agentwatch.version import __version__

SCOPE = "agentwatch.instrumentors.gemini"
# How the guard's warning lines name a step of this instrumentation, and what its failure costs.
WHERE = "Gemini instrumentation"
SKIPPED = "telemetry of that part skipped"


class Telemetry:
    """Tracer, instruments (from the catalogue) and settings of one ``instrument()``."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None):
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = get_meter(SCOPE, __version__, meter_provider=meter_provider)
        built = sc.create_instruments(meter, sc.GENAI_METRICS)
        self.duration = built[sc.GEN_AI_CLIENT_OPERATION_DURATION]
        self.tokens = built[sc.GEN_AI_CLIENT_TOKEN_USAGE]
        self.ttfc = built[sc.GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK]
        self.tpoc = built[sc.GEN_AI_CLIENT_TIME_PER_OUTPUT_CHUNK]
        self.cost = built[sc.GENAI_COST_METRIC]
        self.tool_duration = built[sc.GEN_AI_EXECUTE_TOOL_DURATION]
        self.tool_loops = built[sc.GENAI_TOOL_LOOPS_METRIC]
        self.unknown_tools = built[sc.GENAI_UNKNOWN_TOOLS_METRIC]
        self.guardrail_blocks = built[sc.GENAI_GUARDRAIL_BLOCKS_METRIC]
        config = read_config()
        self.choice = config.choice
        self.logger = get_logger(SCOPE, __version__, logger_provider=logger_provider)
        self.capture = config.capture
        self.cost_enabled = config.cost_enabled
        self.prices = config.prices
        self.emit_gen_ai_system = config.emit_gen_ai_system

    def price_of(self, *models: str | None) -> g.Price | None:
        """The price of the first of ``models`` the table knows (None, said once at debug level, if none)."""
        for model in models:
            price = self.prices.price(model)
            if price is not None:
                return price
        known = next((m for m in models if m), None)
        if known and self.cost_enabled:
            warn_once(f"genai-price:{known}", f"no price for GenAI model {known!r}: no cost recorded", level=logging.DEBUG)
        return None
