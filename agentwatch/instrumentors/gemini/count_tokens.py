"""``count_tokens``: a ``count_tokens`` span with the total the API counted (not billed: no usage, no cost)."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.instrumentors.gemini.call import Call
from agentwatch.instrumentors.gemini.extract import field


class CountTokensCall(Call):
    """One ``count_tokens`` call."""

    operation = "count_tokens"
    methods = (("Models.count_tokens", False), ("AsyncModels.count_tokens", False))

    def _response_attributes(self, response: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        total = field(response, "total_tokens") if response is not None else None
        if total is not None:
            attrs[sc.GENAI_COUNT_TOKENS_TOTAL] = int(total)
        return attrs
