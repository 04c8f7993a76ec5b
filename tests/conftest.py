"""Shared test set-up.

Strict mode: agentwatch's guarded steps (agentwatch.distro.guard) re-raise under the test suite, so a
bug in agentwatch fails a test instead of hiding behind a warning line. The variable is set in the
environment, so subprocess apps started by tests inherit it. Tests that inject faults on purpose
use the ``lenient`` fixture (or drop AGENTWATCH_STRICT from a subprocess's environment).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from agentwatch.distro.guard import STRICT_ENV

os.environ[STRICT_ENV] = "1"


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Guarded steps warn and step aside, as in production (for fault-injection tests)."""
    monkeypatch.delenv(STRICT_ENV, raising=False)
    yield
