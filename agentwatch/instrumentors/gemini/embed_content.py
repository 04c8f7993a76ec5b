"""``embed_content``: an ``embeddings`` span with the vector size and the input tokens the response reports."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.distro import guard
from agentwatch.instrumentors.gemini.call import Call
from agentwatch.instrumentors.gemini.extract import Usage, field
from agentwatch.instrumentors.gemini.telemetry import SKIPPED, WHERE


class EmbedContentCall(Call):
    """One ``embed_content`` call."""

    operation = "embeddings"
    methods = (("Models.embed_content", False), ("AsyncModels.embed_content", False))

    embedding_usage: Usage | None = None  # from the response's token statistics (Vertex) or usage metadata

    def _request_attributes(self) -> dict[str, Any]:
        attrs = super()._request_attributes()
        dimensions = field(self.config, "output_dimensionality")
        if dimensions is not None:
            attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return attrs

    def _response_attributes(self, response: Any) -> dict[str, Any]:
        if response is None:
            return {}
        attrs = guard.run(
            f"{WHERE}: embedding attributes", self._embedding_attributes, response, default={}, outcome=SKIPPED
        )
        return attrs or {}

    def _embedding_attributes(self, response: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        embeddings = field(response, "embeddings") or []
        if embeddings:
            values = field(embeddings[0], "values") or []
            if values:
                attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = len(values)
            tokens = [field(field(e, "statistics"), "token_count") for e in embeddings]
            if any(t is not None for t in tokens):
                self.embedding_usage = Usage(input=int(sum(t or 0 for t in tokens)))
        metadata = field(response, "usage_metadata")
        if metadata is not None and self.embedding_usage is None:
            self.embedding_usage = Usage.of(metadata)
        return attrs

    def _usage(self, response: Any) -> Usage | None:
        return self.embedding_usage
