"""Provider-neutral pieces of agentwatch's GenAI instrumentation.

- content-capture settings (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``)
  with the size limit and the PII scrubber every captured text goes through;
- the bundled, dated price table and the cost of one call.

Nothing here raises into an instrumented call: every reader falls back to its
default with one warning line naming the variable. Which Gemini instrumentation runs is
decided by the distro (:mod:`agentwatch.distro.genai_choice`) while it loads entry points.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from agentwatch._records import Record
from agentwatch.distro import environment_variables as ev
from agentwatch.distro import scrub
from agentwatch.distro._diagnostics import info, warn_once
from agentwatch.distro.scrub.limits import scrub_and_cut
from agentwatch.distro.settings import Reader, current_capture, read_capture

# --------------------------------------------------------------------------- content capture
NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT = "NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"
DEFAULT_MAX_CHARS: int = ev.BY_NAME[ev.AGENTWATCH_GENAI_CONTENT_MAX_CHARS].default


class CaptureSettings(Record):
    """The content-capture mode and the size limit of captured text."""

    __slots__ = ("mode", "max_chars")
    mode: str
    max_chars: int

    def __init__(self, mode: str = NO_CONTENT, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        # Made per agent call: the two stores written out (as a dataclass's generated __init__ does).
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "max_chars", max_chars)

    @property
    def enabled(self) -> bool:
        return self.mode != NO_CONTENT

    @property
    def on_span(self) -> bool:
        return self.mode in (SPAN_ONLY, SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self.mode in (EVENT_ONLY, SPAN_AND_EVENT)


def capture_settings(environ: Mapping[str, str] | None = None) -> CaptureSettings:
    """The content-capture settings, read now by the distro's one reader (from the process environment
    or ``environ``): the agent roles ask per call, so only these two variables are read."""
    if environ is None:
        return CaptureSettings(*current_capture())
    return CaptureSettings(*read_capture(Reader(environ)))


def scrub_text(text: str, max_chars: int) -> str:
    """Captured text as it may be recorded: scrubbed (the distro's scrubber), then cut to ``max_chars``.

    Scrubbed before the cut (a cut card number or e-mail address is no longer recognised), and only
    what can be kept is scrubbed: the first ``max_chars`` + ``limits.MARGIN`` characters
    (:func:`agentwatch.distro.scrub.limits.scrub_and_cut`); the cut never splits a mark.
    """
    kept, dropped = scrub_and_cut(scrub.scrub_text, text, max_chars)  # scrub_text never raises
    return f"{kept}...[truncated {dropped} chars]" if dropped else kept


# --------------------------------------------------------------------------- prices
class Price(Record):
    """USD per 1M tokens."""

    __slots__ = ("input", "output", "cached_input", "long_context_above", "long_context")
    input: float
    output: float
    cached_input: float | None
    long_context_above: int | None
    long_context: Price | None

    def __init__(self, input: float, output: float, cached_input: float | None = None,
                 long_context_above: int | None = None, long_context: Price | None = None) -> None:
        self._set(input=input, output=output, cached_input=cached_input, long_context_above=long_context_above,
                  long_context=long_context)


_VERSION_SUFFIX = re.compile(r"^(\d+|\d{2}-\d{4}|preview.*|latest|exp.*)$")


def _parse_price(name: str, raw: Any) -> Price | None:
    if not isinstance(raw, dict):
        return None
    try:
        long_raw = raw.get("long_context")
        long_price = None
        above = None
        if isinstance(long_raw, dict):
            above = int(long_raw["above_input_tokens"])
            long_price = Price(
                float(long_raw["input"]),
                float(long_raw.get("output", raw.get("output", 0.0))),
                None if long_raw.get("cached_input") is None else float(long_raw["cached_input"]),
            )
        price = Price(
            float(raw["input"]),
            float(raw.get("output", 0.0)),
            None if raw.get("cached_input") is None else float(raw["cached_input"]),
            above,
            long_price,
        )
        if min(price.input, price.output) < 0:
            raise ValueError("negative price")
        return price
    except (KeyError, TypeError, ValueError) as error:
        warn_once(f"genai-price-entry:{name}", f"price entry {name!r} is invalid ({error!r}); it is ignored")
        return None


def _parse_table(data: Any) -> dict[str, Price]:
    models = data.get("models", data) if isinstance(data, dict) else {}
    table: dict[str, Price] = {}
    for name, raw in (models or {}).items():
        if name.startswith("_"):
            continue
        price = _parse_price(name, raw)
        if price is not None:
            table[name] = price
    return table


class PriceTable:
    """Bundled prices, optionally overridden by ``AGENTWATCH_GENAI_PRICES``."""

    def __init__(self, prices: dict[str, Price], as_of: str = ""):
        self.prices = prices
        self.as_of = as_of
        self._lookups: dict[str, Price | None] = {}

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> PriceTable:
        prices: dict[str, Price] = {}
        as_of = ""
        try:
            bundled = json.loads(
                resources.files("agentwatch.instrumentors").joinpath("data/gemini_prices.json").read_text("utf-8")
            )
            prices.update(_parse_table(bundled))
            as_of = bundled.get("_meta", {}).get("as_of", "")
        except Exception as error:  # noqa: BLE001
            warn_once("genai-prices:bundled", f"the bundled Gemini price table could not be read ({error!r}); no cost")
        path = Reader(environ).read(ev.AGENTWATCH_GENAI_PRICES)
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    override = _parse_table(json.load(handle))
                prices.update(override)
                info(f"GenAI prices: {len(override)} models from {path} (over the bundled table of {as_of})")
            except Exception as error:  # noqa: BLE001
                warn_once(
                    f"config:{ev.AGENTWATCH_GENAI_PRICES}",
                    f"{ev.AGENTWATCH_GENAI_PRICES}={path!r} could not be read ({error}); using the bundled prices instead",
                )
        return cls(prices, as_of)

    def price(self, model: str | None) -> Price | None:
        """The price of ``model``: exact name, else its base name (``gemini-2.5-flash-001`` -> ``gemini-2.5-flash``)."""
        if not model:
            return None
        if model in self._lookups:
            return self._lookups[model]
        found = self.prices.get(model)
        if found is None:
            best = ""
            for name in self.prices:
                if model.startswith(name + "-") and len(name) > len(best):
                    if _VERSION_SUFFIX.match(model[len(name) + 1 :]):
                        best = name
            found = self.prices.get(best) if best else None
        if len(self._lookups) < 1024:
            self._lookups[model] = found
        return found


def call_cost(price: Price, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
    """USD of one call. ``input_tokens`` includes ``cached_tokens`` (as Gemini reports and the conventions ask);
    ``output_tokens`` includes thinking tokens (they are billed as output)."""
    rate = price
    if price.long_context is not None and price.long_context_above is not None and input_tokens > price.long_context_above:
        rate = price.long_context
    cached = max(0, min(cached_tokens, input_tokens))
    cached_rate = rate.cached_input if rate.cached_input is not None else rate.input
    total = (input_tokens - cached) * rate.input + cached * cached_rate + output_tokens * rate.output
    return round(total / 1_000_000, 12)

