"""Agent content capture reads the GenAI opt-in exactly as the Gemini instrumentor does, and scrubs like it."""

from __future__ import annotations

import pytest

from agentwatch.distro import _diagnostics
from agentwatch.instrumentors import _genai_common as g
from agentwatch.instrumentors._agents.settings import capture_content, clip

CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_CHARS = "AGENTWATCH_GENAI_CONTENT_MAX_CHARS"


@pytest.mark.parametrize(
    "value", ["", "NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT", "true", "1", "yes", "on", "off", "loud"]
)
def test_agents_and_gemini_agree_on_the_opt_in(monkeypatch, value):
    monkeypatch.setenv(CAPTURE, value)
    assert (capture_content() is not None) == g.capture_settings().on_span


def test_clip_scrubs_and_cuts_like_gemini_content(monkeypatch):
    monkeypatch.setenv(CAPTURE, "SPAN_ONLY")
    monkeypatch.setenv(MAX_CHARS, "40")
    text = "mail bob@example.com " + "x" * 100
    settings = capture_content()
    assert settings is not None and settings.max_chars == 40
    clipped = clip(text, settings)
    assert "bob@example.com" not in clipped and "[REDACTED:email]" in clipped
    assert clipped == g.scrub_text(text, 40) == clip(text)
    assert clipped.endswith("chars]") and "...[truncated " in clipped


def test_the_content_limit_has_one_range(monkeypatch):
    monkeypatch.setenv(MAX_CHARS, "8")  # below the GenAI minimum (16): one warning, the default is used
    assert clip("y" * 5000) == g.scrub_text("y" * 5000, g.DEFAULT_MAX_CHARS)
    assert len([m for m in _diagnostics.messages() if MAX_CHARS in m]) == 1
