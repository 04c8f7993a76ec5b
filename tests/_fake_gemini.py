"""examples/fake_gemini.py served for the tests (test helper).

The ``fake_gemini`` fixture of tests/conftest.py serves one for the whole session (a test may
change its key or latency through monkeypatch; it is reset between tests). Tests that need a
second fake at the same time, or another handler, call ``start_fake_gemini`` themselves.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from fake_gemini import FakeGeminiServer, start_fake_gemini  # noqa: E402

__all__ = ["KEY", "FakeGemini", "FakeGeminiServer", "start_fake_gemini"]

KEY = "test-key"
"""The API key the session's fake requires (what the demo service is given as GEMINI_API_KEY)."""


@dataclass(frozen=True)
class FakeGemini:
    """A running fake Gemini: its server, base URL and required key."""

    server: FakeGeminiServer
    url: str
    key: str = KEY

    @classmethod
    def start(cls) -> FakeGemini:
        server, url = start_fake_gemini(port=0, api_key=KEY)
        return cls(server, url)

    def env(self) -> dict[str, str]:
        """The demo service's settings for this fake (``GEMINI_BASE_URL``, ``GEMINI_API_KEY``)."""
        return {"GEMINI_BASE_URL": self.url, "GEMINI_API_KEY": self.key}

    def require_key(self, key: str | None, monkeypatch: pytest.MonkeyPatch) -> str:
        """For one test, require ``key`` instead (``None``: any key, only a missing one is refused); the URL."""
        monkeypatch.setattr(self.server, "api_key", key)
        return self.url

    def reset(self) -> None:
        """Back to how it started (between tests)."""
        self.server.api_key = self.key
        self.server.latency_s = 0.0
        with self.server._count_lock:
            self.server.request_count = 0

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
