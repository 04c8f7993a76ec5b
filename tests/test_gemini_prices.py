"""The bundled Gemini price table (agentwatch/instrumentors/data/gemini_prices.json) against the genai-prices
package (issue 17, item 7): a drift fails here with the model, the rate and both figures.

genai-prices (Pydantic's maintained LLM price data, a dev dependency) is used from its bundled snapshot only:
nothing is downloaded. Both the rates and whole-call costs are compared, below and above the long-context
threshold and with cached prompt tokens.
"""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources

import pytest
from genai_prices import Usage, calc_price

from agentwatch.instrumentors._genai_common import PriceTable, call_cost

BUNDLED = json.loads(resources.files("agentwatch.instrumentors").joinpath("data/gemini_prices.json").read_text("utf-8"))
MODELS = sorted(name for name in BUNDLED["models"] if not name.startswith("_"))


def _rates(value) -> tuple[Decimal | None, Decimal | None, int | None]:
    """(base rate, long-context rate, threshold) of a genai-prices price, flat or tiered."""
    if value is None:
        return None, None, None
    tiers = getattr(value, "tiers", None)
    if tiers is None:
        return Decimal(str(value)), None, None
    assert len(tiers) == 1, value  # Gemini's one long-context step
    return Decimal(str(value.base)), Decimal(str(tiers[0].price)), int(tiers[0].start)


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@pytest.mark.parametrize("model", MODELS)
def test_rates_match_genai_prices(model):
    ours = BUNDLED["models"][model]
    theirs = calc_price(Usage(input_tokens=1, output_tokens=1), model_ref=model, provider_id="google").model_price
    long_context = ours.get("long_context") or {}
    for field, their_value in (("input", theirs.input_mtok), ("output", theirs.output_mtok),
                               ("cached_input", theirs.cache_read_mtok)):
        base, above, threshold = _rates(their_value)
        if field == "output" and base is None:
            base = Decimal(0)  # an embedding model: no output tokens
        assert _decimal(ours.get(field)) == base, f"{model} {field}: bundled {ours.get(field)}, genai-prices {base}"
        assert _decimal(long_context.get(field)) == above, (
            f"{model} long-context {field}: bundled {long_context.get(field)}, genai-prices {above}")
        if threshold is not None:
            assert long_context["above_input_tokens"] == threshold, (model, long_context, threshold)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("input_tokens", "cached", "output_tokens"), [
    (1_200, 0, 350), (150_000, 100_000, 8_000), (250_000, 0, 1_000), (300_000, 120_000, 2_000),
])
def test_call_costs_match_genai_prices(model, input_tokens, cached, output_tokens):
    price = PriceTable.load({}).price(model)
    assert price is not None
    theirs = calc_price(Usage(input_tokens=input_tokens, cache_read_tokens=cached or None, output_tokens=output_tokens),
                        model_ref=model, provider_id="google")
    if theirs.model_price.cache_read_mtok is None and cached:
        pytest.skip(f"{model}: no cached rate on either side; the call is billed at the input rate by agentwatch")
    ours = call_cost(price, input_tokens, output_tokens, cached)
    assert ours == pytest.approx(float(theirs.total_price), rel=1e-9, abs=1e-12), (model, ours, theirs.total_price)
